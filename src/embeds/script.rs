//! `GET /embed.js`: the widget script (`assets/embed/embed.js`, hand-written, no build
//! step), built into the binary and gzipped once. Its ETag is a hash of its content; the
//! snippet links it as `/embed.js?v=<that hash>`, which is cached for a year (a new daemon
//! with a new script has a new URL), while the bare URL is cached for five minutes and
//! revalidated by ETag.

use std::io::Write;
use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const SOURCE: &str = include_str!("../../assets/embed/embed.js");
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";
const PLAIN_CACHE: &str = "public, max-age=300";

pub struct Script {
    gzipped: Vec<u8>,
    /// The first 16 hex digits of the source's SHA-256.
    version: String,
    etag: String,
}

impl Script {
    pub fn get() -> &'static Script {
        static SCRIPT: LazyLock<Script> = LazyLock::new(|| {
            let version = hex::encode(&Sha256::digest(SOURCE.as_bytes())[..8]);
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gzip.write_all(SOURCE.as_bytes())
                .expect("gzip into memory cannot fail");
            Script {
                gzipped: gzip.finish().expect("gzip into memory cannot fail"),
                etag: format!("\"{version}\""),
                version,
            }
        });
        &SCRIPT
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Bytes on the wire, raw and gzipped (for the docs and the note).
    pub fn sizes(&self) -> (usize, usize) {
        (SOURCE.len(), self.gzipped.len())
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ScriptQuery {
    /// The script's version (the snippet sets it): with the current one, the answer is
    /// cached for a year.
    v: Option<String>,
}

/// The widget script (vanilla custom elements in Shadow DOM).
#[utoipa::path(get, path = "/embed.js", tag = "embeds", params(ScriptQuery),
    responses((status = 200, description = "The script", content_type = "text/javascript",
            body = String),
        (status = 304, description = "Not modified (If-None-Match)")))]
#[get("/embed.js")]
pub async fn serve(req: HttpRequest, query: web::Query<ScriptQuery>) -> HttpResponse {
    let script = Script::get();
    let cache = if query.v.as_deref() == Some(script.version()) {
        VERSIONED_CACHE
    } else {
        PLAIN_CACHE
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == script.etag));
    let mut answer = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, script.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::VARY, "Accept-Encoding"));
    if fresh {
        return answer.finish();
    }
    answer.insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"));
    let gzip_ok = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accepted| accepted.split(',').any(|e| e.trim().starts_with("gzip")));
    if gzip_ok {
        answer
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(script.gzipped.as_slice())
    } else {
        answer.body(SOURCE)
    }
}
