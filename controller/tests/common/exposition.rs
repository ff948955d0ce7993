//! A reader of the OpenMetrics text exposition `GET /metrics` answers: every sample by name and
//! labels, so tests compare series rather than lines.

use std::collections::BTreeMap;

/// One sample: its name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<Sample>);

impl Samples {
    /// Parses an exposition (comments skipped, label values unescaped); panics on a line that
    /// is not a sample, which the controller must never write. The text must end with `# EOF`.
    pub fn parse(text: &str) -> Samples {
        assert!(text.ends_with("# EOF\n"), "not a whole exposition: {text}");
        let mut v = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let name_end = line.find(['{', ' ']).expect("a sample has a value");
            let name = line[..name_end].to_string();
            let mut labels = BTreeMap::new();
            let mut rest = &line[name_end..];
            if let Some(body) = rest.strip_prefix('{') {
                let mut chars = body.char_indices();
                let (mut key, mut value, mut in_value) = (String::new(), String::new(), false);
                let end = loop {
                    let (i, c) = chars.next().expect("labels end with }");
                    match (in_value, c) {
                        (false, '}') => break i,
                        (false, ',') => {}
                        (false, '=') => {
                            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                            in_value = true;
                        }
                        (false, c) => key.push(c),
                        (true, '\\') => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => panic!("dangling escape in {line}"),
                        },
                        (true, '"') => {
                            labels.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                            in_value = false;
                        }
                        (true, c) => value.push(c),
                    }
                };
                rest = &body[end + 1..];
            }
            let value = match rest.split_whitespace().next().expect("a value") {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            v.push(Sample {
                name,
                labels,
                value,
            });
        }
        Samples(v)
    }

    /// The value of the one series called `name` whose labels include `labels`; `None` when
    /// there is none. Panics when several match: the test named too few labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.0.iter().filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        });
        let one = found.next()?;
        assert!(
            found.next().is_none(),
            "{name} {labels:?} is not one series"
        );
        Some(one.value)
    }

    /// [`Samples::get`], 0 for a series not shown yet (a labelled counter appears on its first
    /// count).
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}
