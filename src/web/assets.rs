//! `GET /assets/{file}`: the pages' stylesheet and script (`assets/web/`), built into the
//! binary and answered with an ETag like the API reference's files.

use std::sync::OnceLock;

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::docs::{routes::answer, File};
use crate::error::ApiError;

/// Revalidated on each load: the pages link the files by name, without a version.
const CACHE: &str = "no-cache";

fn asset(name: &str) -> Option<&'static File> {
    static ASSETS: OnceLock<[(&str, File); 2]> = OnceLock::new();
    let assets = ASSETS.get_or_init(|| {
        [
            (
                "app.css",
                File::new(
                    "text/css; charset=utf-8",
                    &include_bytes!("../../assets/web/app.css")[..],
                ),
            ),
            (
                "app.js",
                File::new(
                    "text/javascript; charset=utf-8",
                    &include_bytes!("../../assets/web/app.js")[..],
                ),
            ),
        ]
    });
    assets
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, file)| file)
}

#[get("/assets/{file}")]
pub async fn serve(
    request: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let asset = asset(&file).ok_or_else(|| {
        ApiError::not_found("asset_not_found", format!("no file `{file}` under /assets"))
    })?;
    Ok(answer(&request, asset, CACHE))
}
