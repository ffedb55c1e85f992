//! Print the analyses of a text given on the command line (or stdin) as JSON.
//! `cargo run --example show -- "SELECT 1; DELETE FROM t"`
use pgtrail::sql::{analyze, AnalyzerConfig, Redaction};
use std::io::Read;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let literals = args.first().is_some_and(|a| a == "--literals");
    if literals {
        args.remove(0);
    }
    let text = match args.first() {
        Some(t) => t.clone().into_bytes(),
        None => {
            let mut b = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut b);
            b
        }
    };
    let cfg = AnalyzerConfig {
        redaction: if literals {
            Redaction::Literals
        } else {
            Redaction::None
        },
        ..AnalyzerConfig::default()
    };
    for a in analyze(&text, &cfg) {
        println!("{}", serde_json::to_string(&a).unwrap_or_default());
    }
}
