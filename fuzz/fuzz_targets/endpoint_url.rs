//! Endpoint and callback URLs come from customers. Parsing must never panic, and a
//! URL it accepts must not name a refused destination in any spelling: whatever host
//! the delivery client will read from it must pass the destination policy.
#![no_main]

use std::net::IpAddr;

use hookd_core::{DestinationPolicy, EndpointUrl, UrlRules};
use libfuzzer_sys::fuzz_target;
use url::{Host, Url};

fuzz_target!(|input: (&str, bool)| {
    let (raw, allow_http) = input;
    let rules = UrlRules { allow_http, destinations: DestinationPolicy::new(Vec::new()) };
    let Ok(accepted) = EndpointUrl::parse(raw, &rules) else { return };
    let url = Url::parse(accepted.as_str()).expect("an accepted URL parses again");
    assert!(url.scheme() == "https" || (allow_http && url.scheme() == "http"), "scheme {}", url.scheme());
    let address = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            assert!(name != "localhost" && !name.ends_with(".localhost"), "accepted {raw:?}");
            return;
        }
        None => panic!("accepted a URL without a host: {raw:?}"),
    };
    assert!(rules.destinations.check(address).is_ok(), "accepted {raw:?}, which names {address}");
});
