//! `${VAR}` and `${VAR:-default}` in string values, so one file serves every
//! platform (`plain = "0.0.0.0:${PORT:-8080}"`) and secrets stay in the
//! environment (`secret = "${REVERB_APP_SECRET}"`). `$$` is a literal `$`.

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ExpandError {
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    #[error("unterminated `${{` (missing `}}`)")]
    Unterminated,
    #[error("`${{{0}}}` is not a valid variable name")]
    BadName(String),
}

pub(crate) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_on) = after.strip_prefix('{') {
            let end = body_on.find('}').ok_or(ExpandError::Unterminated)?;
            let body = &body_on[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(ExpandError::BadName(body.to_string()));
            }
            match (
                env(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(ExpandError::Unset(name.to_string())),
            }
            rest = &body_on[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "PORT" => Some("9000".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands() {
        assert_eq!(expand("0.0.0.0:${PORT}", &env).unwrap(), "0.0.0.0:9000");
        assert_eq!(
            expand("0.0.0.0:${NOPE:-8080}", &env).unwrap(),
            "0.0.0.0:8080"
        );
        assert_eq!(expand("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("a$$b $x", &env).unwrap(), "a$b $x");
        assert_eq!(
            expand("${NOPE}", &env),
            Err(ExpandError::Unset("NOPE".into()))
        );
        assert_eq!(expand("${PORT", &env), Err(ExpandError::Unterminated));
        assert!(matches!(
            expand("${1X}", &env),
            Err(ExpandError::BadName(_))
        ));
    }
}
