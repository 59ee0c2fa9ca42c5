//! Talking to services outside the daemon over HTTP (Resend, PostHog, a creator's webhook
//! endpoints, OpenAI): what one try came to, read off an answer the same way everywhere,
//! with errors described without the URL (which may carry a key) and answers read only
//! as far as the record needs (a creator's endpoint could stream without end); and the
//! pace each service is sent at (its rate limit, and CPU left to ingest in a burst).

/// A service's pace: requests a second at most, waited for (not refused) when exceeded.
pub struct Pace(governor::DefaultDirectRateLimiter);

impl Pace {
    pub fn per_second(requests: u32) -> Pace {
        let requests = std::num::NonZeroU32::new(requests).unwrap_or(std::num::NonZeroU32::MIN);
        Pace(governor::RateLimiter::direct(governor::Quota::per_second(
            requests,
        )))
    }

    /// Waits until one more request may go.
    pub async fn turn(&self) {
        self.0.until_ready().await;
    }
}

/// Bytes of an answer kept for the record.
const ANSWER_BYTES: usize = 4_096;
/// Characters of an answer shown in the record.
const EXCERPT_CHARS: usize = 300;

/// What one try to send something came to.
#[derive(Debug, Clone)]
pub enum Sent {
    Delivered {
        status: u16,
    },
    /// Worth trying again (a 429, a 5xx, a timeout, the service unreachable); `retry_after`
    /// is the wait the service asked for, in seconds.
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<u64>,
    },
    /// Will not succeed as it is (the service refuses the request itself).
    Refused {
        status: Option<u16>,
        error: String,
    },
}

/// What a request came to: its answer judged (`judge`), or no answer (`unreachable`).
pub async fn outcome(answer: Result<reqwest::Response, reqwest::Error>) -> Sent {
    match answer {
        Ok(response) => {
            let (status, headers) = (response.status(), response.headers().clone());
            judge(status, &headers, &start_of(response).await)
        }
        Err(err) => unreachable(&err),
    }
}

/// The first `ANSWER_BYTES` of an answer's body, as text.
async fn start_of(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ANSWER_BYTES);
    String::from_utf8_lossy(&body).into_owned()
}

/// An answer as what one try came to: 2xx delivered; 401, 403 (a key to fix, which the
/// operator will), 408, 409, 425, 429 and 5xx worth retrying, with the `Retry-After`
/// seconds if any; any other status refused.
pub fn judge(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> Sent {
    let code = status.as_u16();
    if status.is_success() {
        return Sent::Delivered { status: code };
    }
    let error = format!("HTTP {code}: {}", excerpt(body));
    if status.is_server_error() || matches!(code, 401 | 403 | 408 | 409 | 425 | 429) {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        Sent::Failed {
            status: Some(code),
            error,
            retry_after,
        }
    } else {
        Sent::Refused {
            status: Some(code),
            error,
        }
    }
}

/// A request that got no answer (refused connection, timeout): worth retrying.
pub fn unreachable(err: &reqwest::Error) -> Sent {
    let error = if err.is_timeout() {
        "timed out".to_string()
    } else {
        format!("no answer: {}", describe(err))
    };
    Sent::Failed {
        status: None,
        error,
        retry_after: None,
    }
}

/// A reqwest error with its causes, without the URL it names (a URL may carry a key).
pub fn describe(err: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a service's answer, for the record (bounded, one line).
fn excerpt(body: &str) -> String {
    crate::schema::printable(body)
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_judged_by_whether_a_retry_can_help() {
        let headers = {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::RETRY_AFTER, "30".parse().unwrap());
            h
        };
        let none = reqwest::header::HeaderMap::new();
        assert!(matches!(
            judge(reqwest::StatusCode::OK, &none, ""),
            Sent::Delivered { status: 200 }
        ));
        assert!(matches!(
            judge(reqwest::StatusCode::TOO_MANY_REQUESTS, &headers, ""),
            Sent::Failed {
                retry_after: Some(30),
                ..
            }
        ));
        assert!(matches!(
            judge(reqwest::StatusCode::UNAUTHORIZED, &none, ""),
            Sent::Failed { .. }
        ));
        assert!(matches!(
            judge(reqwest::StatusCode::BAD_GATEWAY, &none, ""),
            Sent::Failed {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(
            judge(reqwest::StatusCode::UNPROCESSABLE_ENTITY, &none, "bad"),
            Sent::Refused { .. }
        ));
    }
}
