//! Which sites may show the customer portal inside a frame (`--portal-frame-ancestors`):
//! origins only, as a Content-Security-Policy `frame-ancestors` source list takes them.

/// The origins allowed to frame the portal; empty: none (the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAncestors(Vec<String>);

/// An entry that is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an origin: give scheme, host and optional port (https://dashboard.example.com, https://*.example.com:8443), no path"
)]
pub struct InvalidFrameAncestor(pub String);

impl FrameAncestors {
    /// Checks each origin. A host may start with `*.` (any subdomain), as CSP allows.
    pub fn parse<'a>(origins: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidFrameAncestor> {
        let mut checked = Vec::new();
        for raw in origins {
            let origin = raw.trim().trim_end_matches('/');
            if origin.is_empty() {
                continue;
            }
            if !is_origin(origin) {
                return Err(InvalidFrameAncestor(raw.to_owned()));
            }
            checked.push(origin.to_ascii_lowercase());
        }
        Ok(Self(checked))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CSP `frame-ancestors` directive's value.
    pub fn directive_value(&self) -> String {
        if self.0.is_empty() { "'none'".to_owned() } else { self.0.join(" ") }
    }
}

fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else { return false };
    if scheme != "https" && scheme != "http" {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name = host.strip_prefix("*.").unwrap_or(host);
    let host_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        });
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_kept_and_nothing_else_is() {
        let ok = FrameAncestors::parse([
            "https://Dash.example.com/",
            "http://127.0.0.1:8081",
            "https://*.example.org",
        ]);
        assert_eq!(
            ok.expect("origins").directive_value(),
            "https://dash.example.com http://127.0.0.1:8081 https://*.example.org"
        );
        for bad in [
            "dash.example.com",
            "https://x.com/path",
            "javascript://x",
            "https://",
            "https://a b",
            "*",
            "'self'",
            "https://x.com:80a",
            "https://x.com;script-src *",
        ] {
            assert!(FrameAncestors::parse([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_origin_means_no_framing() {
        assert_eq!(FrameAncestors::parse([]).expect("empty").directive_value(), "'none'");
    }
}
