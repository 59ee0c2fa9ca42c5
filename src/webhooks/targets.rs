//! Where a webhook may be sent. A creator names the URL, so without a check a creator could
//! make the daemon probe the network it runs in (its own loopback, the cloud's metadata
//! address, a private database). Unless the operator allows private targets
//! (`webhooks.allow_private_targets`), a URL is refused when its host is such an address,
//! or a name for one: checked when the endpoint is saved (a clear 422), and again at every
//! connection by the delivery client's resolver (`PublicOnly`), so a name that later
//! resolves elsewhere (DNS rebinding) still cannot reach inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

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
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        internal_v4(Ipv4Addr::new(a, b, c, d))
    };
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        // IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms of an address.
        || ip.to_ipv4().is_some_and(internal_v4)
        || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && embedded(segments[6], segments[7]))
        || (segments[0] == 0x2002 && embedded(segments[1], segments[2]))
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_url", message)
}

/// How long a name may take to resolve when an endpoint is saved; past it the name is
/// taken, and the resolver checks it at each connection.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// A webhook URL: what `schema::parse_url` takes (http(s), a host name, RFC 3986
/// characters, at most 2,048), no credentials, and (unless `allow_private`) a host that is
/// no internal address, nor a name resolving to one (asked of the resolver once, when the
/// URL is saved).
pub async fn check(url: &str, allow_private: bool) -> Result<Url, ApiError> {
    let (parsed, name) = check_without_lookup(url, allow_private)?;
    let Some(name) = name else {
        return Ok(parsed);
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    // A name that does not resolve now may later: the resolver checks at each delivery.
    let lookup = tokio::net::lookup_host((name.as_str(), port));
    if let Ok(Ok(addresses)) = tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        if addresses.into_iter().any(|a| is_internal(a.ip())) {
            return Err(internal());
        }
    }
    Ok(parsed)
}

/// `check` but for the lookup: at a delivery, where the client's resolver (`PublicOnly`)
/// checks names at the connection, and only an address written in the URL is left to
/// check. Answers the URL and, unless private targets are allowed, the host name to look
/// up (none for an address).
pub fn check_without_lookup(
    url: &str,
    allow_private: bool,
) -> Result<(Url, Option<String>), ApiError> {
    crate::schema::parse_url("url", url)?;
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
        .to_string();
    if allow_private {
        return Ok((parsed, None));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_internal(ip) {
            Err(internal())
        } else {
            Ok((parsed, None))
        };
    }
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return Err(internal());
    }
    Ok((parsed, Some(host)))
}

fn internal() -> ApiError {
    refused(
        "url points at a loopback, private or otherwise internal address; the operator can \
         allow that with webhooks.allow_private_targets",
    )
}

/// A client for URLs a creator names: no redirects (one could lead inside), no proxy from
/// the environment (a proxy resolves names itself, past `PublicOnly`), and unless private
/// targets are allowed, only public addresses.
pub fn client(timeout: std::time::Duration, allow_private: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("staryer/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
    }
    builder.build().expect("an HTTP client builds")
}

/// The resolver of `client`: a name's internal addresses are dropped, and a name with no
/// other address fails to resolve.
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
            "64:ff9b::10.0.0.1",
            "2002:c0a8:0101::1",
            "198.18.0.1",
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
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert_eq!(
                check(url, false).await.unwrap_err().code,
                "invalid_url",
                "{url}"
            );
            assert!(check(url, true).await.is_ok(), "{url}");
        }
        // IPv6 literals are outside the URL pattern the API documents: refused either way.
        assert!(check("http://[::1]/hook", true).await.is_err());
        assert!(check("https://93.184.216.34/hook", false).await.is_ok());
        assert!(check("ftp://example.com/", true).await.is_err());
        assert!(check("https://user:pw@example.com/", true).await.is_err());
    }
}
