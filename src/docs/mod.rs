//! `/docs`: the interactive API reference, Swagger UI rendering `/openapi.json`. Its script
//! and styles are vendored under `assets/docs/` (the pinned version and how to update it:
//! `assets/docs/README.md`; `.ci/check-vendored-assets` checks them against the package)
//! and built into the binary, so the page works without internet access and nothing is
//! fetched from a CDN. Every file answers with an ETag (a revalidation answers 304); the
//! assets are named with their version in the page's links, so browsers may keep them a
//! year, while the page itself is revalidated each time.

pub mod routes;

use std::borrow::Cow;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The vendored Swagger UI release (`assets/docs/VERSION`).
pub fn swagger_ui_version() -> &'static str {
    include_str!("../../assets/docs/VERSION").trim()
}

/// A file served under `/docs`.
pub struct File {
    pub content_type: &'static str,
    pub bytes: Cow<'static, [u8]>,
    /// Strong validator: a hash of the bytes, quoted.
    pub etag: String,
}

impl File {
    pub fn new(content_type: &'static str, bytes: impl Into<Cow<'static, [u8]>>) -> File {
        let bytes = bytes.into();
        let digest = Sha256::digest(&bytes);
        File {
            content_type,
            bytes,
            etag: format!("\"{}\"", hex::encode(&digest[..16])),
        }
    }
}

/// The page, with the assets' links naming their version.
pub fn page() -> &'static File {
    static PAGE: OnceLock<File> = OnceLock::new();
    PAGE.get_or_init(|| {
        let html = include_str!("page.html").replace("{version}", swagger_ui_version());
        File::new("text/html; charset=utf-8", html.into_bytes())
    })
}

/// The assets the page loads, by name.
pub fn asset(name: &str) -> Option<&'static File> {
    static ASSETS: OnceLock<[(&str, File); 2]> = OnceLock::new();
    let assets = ASSETS.get_or_init(|| {
        [
            (
                "swagger-ui-bundle.js",
                File::new(
                    "text/javascript; charset=utf-8",
                    &include_bytes!("../../assets/docs/swagger-ui-bundle.js")[..],
                ),
            ),
            (
                "swagger-ui.css",
                File::new(
                    "text/css; charset=utf-8",
                    &include_bytes!("../../assets/docs/swagger-ui.css")[..],
                ),
            ),
        ]
    });
    assets
        .iter()
        .find(|(asset, _)| *asset == name)
        .map(|(_, file)| file)
}
