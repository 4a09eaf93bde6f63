//! A strict reader of the Prometheus text exposition format (0.0.4), so
//! the tests refuse a page a real scraper might choke on: every sample's
//! family has exactly one `# HELP` and one `# TYPE`, both before its
//! samples; a family's samples are contiguous; metric and label names are
//! valid; label values are properly quoted and escaped; no series repeats;
//! histograms have `le` buckets ending in `+Inf`, and `_count` equals the
//! `+Inf` bucket.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// A parsed page.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) samples: Vec<Sample>,
    /// Family name → type.
    pub(crate) types: BTreeMap<String, String>,
}

fn metric_name_ok(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn label_name_ok(n: &str) -> bool {
    let mut c = n.chars();
    !n.starts_with("__")
        && c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn value_of(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y"}` → the labels and the rest of the line.
fn labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 1; // after `{`
    loop {
        if b.get(i) == Some(&b'}') {
            return Ok((out, &s[i + 1..]));
        }
        let eq = s[i..].find('=').ok_or("label without =")? + i;
        let name = &s[i..eq];
        if !label_name_ok(name) {
            return Err(format!("bad label name {name:?}"));
        }
        if b.get(eq + 1) != Some(&b'"') {
            return Err(format!("label {name} value is not quoted"));
        }
        let mut j = eq + 2;
        let mut v = String::new();
        loop {
            match b.get(j) {
                None => return Err(format!("label {name} value not closed")),
                Some(b'"') => break,
                Some(b'\\') => {
                    match b.get(j + 1) {
                        Some(b'\\') => v.push('\\'),
                        Some(b'"') => v.push('"'),
                        Some(b'n') => v.push('\n'),
                        other => return Err(format!("bad escape {other:?} in label {name}")),
                    }
                    j += 2;
                }
                Some(b'\n') => return Err(format!("raw newline in label {name}")),
                Some(_) => {
                    let ch = s[j..].chars().next().ok_or("cut character")?;
                    v.push(ch);
                    j += ch.len_utf8();
                }
            }
        }
        if out.insert(name.to_string(), v).is_some() {
            return Err(format!("label {name} repeated"));
        }
        i = j + 1;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            other => return Err(format!("unexpected {other:?} after label {name}")),
        }
    }
}

/// The family a sample belongs to, given the TYPEs seen so far.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return Some(base);
        }
    }
    None
}

/// Parses `text`, or says what is wrong and on which line.
pub(crate) fn parse_strict(text: &str) -> Result<Page, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the page does not end with a newline".into());
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut samples = Vec::new();
    let mut series = BTreeSet::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let arg = parts.next().unwrap_or("");
            if !metric_name_ok(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            if done.contains(name) {
                return Err(at(format!("family {name} appears twice")));
            }
            if current.as_deref() != Some(name)
                && let Some(prev) = current.replace(name.to_string())
            {
                done.insert(prev);
            }
            match kw {
                "HELP" => {
                    if !helps.insert(name.to_string()) {
                        return Err(at("second HELP".into()));
                    }
                    if arg.contains('\\')
                        && arg.replace("\\\\", "").replace("\\n", "").contains('\\')
                    {
                        return Err(at("bad escape in HELP".into()));
                    }
                }
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                        return Err(at(format!("unknown type {arg:?}")));
                    }
                    if types.insert(name.to_string(), arg.to_string()).is_some() {
                        return Err(at("second TYPE".into()));
                    }
                }
                _ => return Err(at("a comment that is neither HELP nor TYPE".into())),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("malformed comment".into()));
        }
        let end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..end];
        if !metric_name_ok(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[end..].starts_with('{') {
            labels(&line[end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = value_of(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(at(format!("bad timestamp {ts:?}")));
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let family = family_of(name, &types)
            .ok_or_else(|| at(format!("sample {name} has no TYPE before it")))?;
        if !helps.contains(family) {
            return Err(at(format!("family {family} has no HELP")));
        }
        if current.as_deref() != Some(family) {
            return Err(at(format!("sample of {family} outside its family's block")));
        }
        let ty = &types[family];
        if ty == "counter" && (value.is_nan() || value < 0.0) {
            return Err(at("negative or NaN counter".into()));
        }
        if ty == "histogram" && name.ends_with("_bucket") && !labels.contains_key("le") {
            return Err(at("bucket without le".into()));
        }
        if !series.insert(format!("{name}{labels:?}")) {
            return Err(at("series repeated".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    let page = Page { samples, types };
    page.check_histograms()?;
    Ok(page)
}

impl Page {
    /// The one sample named `name` whose labels include `want`; `None`
    /// when there is none, a panic when several match.
    pub(crate) fn get(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let hits: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
            })
            .collect();
        assert!(hits.len() <= 1, "{name} {want:?} matches several: {hits:?}");
        hits.first().map(|s| s.value)
    }

    /// [`get`](Self::get), 0 when absent (a counter or gauge not yet created).
    pub(crate) fn or0(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.get(name, want).unwrap_or(0.0)
    }

    /// Every histogram series: buckets ascend to `+Inf`, counts never
    /// fall, and `_count` is the `+Inf` bucket.
    fn check_histograms(&self) -> Result<(), String> {
        for (family, ty) in &self.types {
            if ty != "histogram" {
                continue;
            }
            let bucket = format!("{family}_bucket");
            let mut by_series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for s in self.samples.iter().filter(|s| s.name == bucket) {
                let mut key = s.labels.clone();
                let le = key.remove("le").unwrap_or_default();
                by_series
                    .entry(format!("{key:?}"))
                    .or_default()
                    .push((value_of(&le)?, s.value));
            }
            for (key, buckets) in by_series {
                let last = buckets.last().ok_or("empty histogram")?;
                if last.0 != f64::INFINITY {
                    return Err(format!("{family}{key}: last bucket is not +Inf"));
                }
                if buckets
                    .windows(2)
                    .any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1)
                {
                    return Err(format!("{family}{key}: buckets out of order"));
                }
                let count = self
                    .samples
                    .iter()
                    .find(|s| {
                        s.name == format!("{family}_count") && format!("{:?}", s.labels) == key
                    })
                    .ok_or_else(|| format!("{family}{key}: no _count"))?;
                if count.value != last.1 {
                    return Err(format!("{family}{key}: _count is not the +Inf bucket"));
                }
            }
        }
        Ok(())
    }
}

#[test]
fn the_checker_refuses_what_a_scraper_would() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n";
    assert!(parse_strict(ok).is_ok());
    for bad in [
        "a_total 1\n",                                                          // no TYPE
        "# TYPE a_total counter\na_total 1\n",                                  // no HELP
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",                              // unquoted
        "# HELP a A.\n# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",                  // repeated label
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",                              // repeated series
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",                                // bad name
        "# HELP a A.\n# TYPE a gauge\na one\n",                                 // bad value
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\nb 1\na 1\n", // split family
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",   // no +Inf
    ] {
        assert!(parse_strict(bad).is_err(), "accepted {bad:?}");
    }
}
