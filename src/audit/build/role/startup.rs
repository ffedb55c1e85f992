//! The roles a StartupMessage sets (`options`, `role`,
//! `session_authorization`).

/// Roles a StartupMessage sets, as PostgreSQL applies them: `options`
/// first, then the other parameters, the last assignment winning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupIdentity {
    pub session_authorization: Option<String>,
    pub role: Option<String>,
    /// `pgtrail.*` settings (end-user claims, `crate::identity`), names
    /// lower case, the last assignment of each kept.
    pub claims: Vec<(String, String)>,
}

impl StartupIdentity {
    /// From the startup parameters (name, value), in the order sent.
    pub fn from_params<'a>(params: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let mut id = StartupIdentity::default();
        let options = params.clone().filter(|(k, _)| *k == "options");
        for (_, text) in options {
            for (name, value) in option_settings(text) {
                id.apply(&name, &value);
            }
        }
        for (name, value) in params.filter(|(k, _)| *k != "options") {
            id.apply(&name.to_ascii_lowercase(), value);
        }
        id
    }

    fn apply(&mut self, name: &str, value: &str) {
        match name {
            "role" => self.role = (value != "none").then(|| value.to_string()),
            "session_authorization" => {
                // SET SESSION AUTHORIZATION makes the role inactive.
                self.session_authorization = Some(value.to_string());
                self.role = None;
            }
            name if name.starts_with("pgtrail.") => {
                self.claims.retain(|(n, _)| n != name);
                self.claims.push((name.to_string(), value.to_string()));
            }
            _ => {}
        }
    }
}

/// `name=value` settings of an `options` string: words split at
/// whitespace with `\` escaping the next character (PostgreSQL's
/// `pg_split_opts`), read as `-c name=value`, `-cname=value` or
/// `--name=value` (`-` in the name read as `_`).
fn option_settings(text: &str) -> Vec<(String, String)> {
    let words = split_opts(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let setting = if w == "-c" {
            i += 1;
            words.get(i).map(String::as_str)
        } else {
            w.strip_prefix("--").or_else(|| w.strip_prefix("-c"))
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('=')) {
            out.push((name.replace('-', "_").to_ascii_lowercase(), value.into()));
        }
        i += 1;
    }
    out
}

fn split_opts(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
            match c {
                '\\' => word.extend(chars.next()),
                c => word.push(c),
            }
        }
        words.push(word);
    }
}
