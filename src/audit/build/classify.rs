//! The SQL analyzer as the audit path's classifier.

use crate::audit::build::{Classification, Classifier};
use crate::sql::{Analysis, Analyzer};
use std::ops::Range;

impl Classifier for Analyzer {
    fn cache_stats(&self) -> Option<crate::sql::CacheStats> {
        Some(Analyzer::cache_stats(self))
    }

    fn classify(&self, statement: &[u8]) -> Classification {
        classification(&self.analyze(statement))
    }

    fn classify_picked(
        &self,
        text: &[u8],
        pick: &dyn Fn(&[Range<usize>]) -> Option<usize>,
    ) -> (Range<usize>, Classification) {
        let (range, analyses) = self.analyze_picked(text, pick);
        (range, classification(&analyses))
    }
}

/// One statement's analyses as the record's classification. Several come
/// only when the builder's index points past the statements of a Query
/// string (the whole text is classified): the first decides the kind and
/// all add their objects.
fn classification(analyses: &[Analysis]) -> Classification {
    let Some(first) = analyses.first() else {
        return Classification {
            kind: "empty".into(),
            class: "unknown".into(),
            ..Default::default()
        };
    };
    let mut c = from_analysis(first);
    for more in analyses.iter().skip(1) {
        c.objects_read.extend(more.objects_read.iter().cloned());
        c.objects_written
            .extend(more.objects_written.iter().cloned());
        c.functions.extend(more.functions.iter().cloned());
        std::sync::Arc::make_mut(&mut c.columns).extend(&more.columns);
    }
    if analyses.len() > 1 {
        let texts: Vec<&str> = analyses.iter().map(|a| a.statement.text.as_str()).collect();
        c.redacted = Some(texts.join("; "));
    }
    c
}

fn from_analysis(a: &Analysis) -> Classification {
    Classification {
        kind: a.kind.as_str().into(),
        class: a.class.as_str().into(),
        crud: a.crud.as_str().into(),
        audit_class: a.audit_class.as_str().into(),
        objects_read: a.objects_read.clone(),
        objects_written: a.objects_written.clone(),
        functions: a.functions.clone(),
        parser: a.parser.as_str().into(),
        fingerprint: a.fingerprint,
        normalized: a.normalized.clone(),
        redacted: Some(a.statement.text.clone()),
        redacted_escaped: a.statement.escaped,
        columns: a.columns.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::AnalyzerConfig;

    /// The trait's default `classify_picked`: split by `statement_ranges`,
    /// then the statement's text alone through the analyzer.
    struct SplitFirst(Analyzer);

    impl Classifier for SplitFirst {
        fn classify(&self, statement: &[u8]) -> Classification {
            self.0.classify(statement)
        }
    }

    #[test]
    fn one_split_classifies_as_split_then_classify() {
        let once = Analyzer::new(AnalyzerConfig::default());
        let twice = SplitFirst(Analyzer::new(AnalyzerConfig::default()));
        let texts: [&[u8]; 5] = [
            b"SELECT 1; UPDATE t SET a = 'x;y' WHERE b = 2; -- c\nDELETE FROM u",
            b"BEGIN; INSERT INTO t VALUES ($$;$$); COMMIT;",
            b"CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; SELECT f()",
            b"SELECT '\xff'; SELECT 2",
            b"SELECT 1 ;  ",
        ];
        for text in texts {
            for index in 0..5 {
                let pick = |parts: &[Range<usize>]| {
                    Some(index).filter(|&i| i < parts.len() && parts.len() > 1)
                };
                let a = once.classify_picked(text, &pick);
                let b = twice.classify_picked(text, &pick);
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{index}");
            }
        }
    }
}
