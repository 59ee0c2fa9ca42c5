//! Where a webhook may be sent. A creator names the URL, so without a check a creator could
//! make the daemon probe the network it runs in (its own loopback, the cloud's metadata
//! address, a private database). Unless the operator allows private targets
//! (`webhooks.allow_private_targets`), a URL is refused when its host is such an address,
//! or a name for one: checked when the endpoint is saved (a clear 422), and again at every
//! connection by the delivery client's resolver (`PublicOnly`), so a name that later
//! resolves elsewhere (DNS rebinding) still cannot reach inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use crate::error::ApiError;

/// Loopback, private, link-local, shared (CGNAT), unspecified, multicast, broadcast and
/// documentation addresses, and IPv6's unique-local and IPv4-mapped forms of them.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || ip
            .to_ipv4()
            .is_some_and(|v4| internal_v4(v4) && !ip.is_loopback())
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_url", message)
}

/// A webhook URL: absolute http(s), no credentials, at most 2,048 characters, and (unless
/// `allow_private`) a host that is no internal address, nor a name resolving to one.
pub async fn check(url: &str, allow_private: bool) -> Result<Url, ApiError> {
    if url.len() > 2_048 {
        return Err(refused("url is longer than 2,048 characters"));
    }
    let parsed = Url::parse(url).map_err(|_| refused("url is not an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(refused("url must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused("url must not carry credentials"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| refused("url has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if allow_private {
        return Ok(parsed);
    }
    let internal = refused(
        "url points at a loopback, private or otherwise internal address; the operator can \
         allow that with webhooks.allow_private_targets",
    );
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_internal(ip) {
            Err(internal)
        } else {
            Ok(parsed)
        };
    }
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return Err(internal);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    // A name that does not resolve now may later: the resolver checks at each delivery.
    if let Ok(addresses) = tokio::net::lookup_host((host.as_str(), port)).await {
        if addresses.into_iter().any(|a| is_internal(a.ip())) {
            return Err(internal);
        }
    }
    Ok(parsed)
}

/// The delivery client's resolver: a name's internal addresses are dropped, and a name
/// with no other address fails to resolve.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| !is_internal(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_known() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[actix_web::test]
    async fn urls_on_internal_hosts_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert_eq!(
                check(url, false).await.unwrap_err().code,
                "invalid_url",
                "{url}"
            );
            assert!(check(url, true).await.is_ok(), "{url}");
        }
        assert!(check("https://93.184.216.34/hook", false).await.is_ok());
        assert!(check("ftp://example.com/", true).await.is_err());
        assert!(check("https://user:pw@example.com/", true).await.is_err());
    }
}
