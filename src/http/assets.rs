//! The embedded web UI: `/` (visitor chat), `/agent` (inbox), `/api/docs` (the API
//! reference), `/widget.js`, `/static/*`.

use actix_web::http::header::{self, EntityTag, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

use crate::config::Config;
use crate::http::error::ApiError;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Pages may load only their own scripts and styles; nothing inline.
const CSP_BASE: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'";

pub async fn visitor_page(
    config: web::Data<Config>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // The visitor page is what the widget frames, on the sites the operator allows.
    let ancestors = frame_ancestors(&config.allowed_origins);
    serve(&req, "index.html", Some(&ancestors))
}

/// The CSP `frame-ancestors` directive for `PARLEY_ALLOWED_ORIGINS`; entries that are not
/// `*` or an http(s) origin are dropped, so a typo can never widen the policy.
pub fn frame_ancestors(allowed_origins: &str) -> String {
    let origins: Vec<&str> = allowed_origins
        .split([' ', ','])
        .filter(|o| {
            *o == "*"
                || ((o.starts_with("https://") || o.starts_with("http://"))
                    && o.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:/*[]".contains(c)))
        })
        .collect();
    if origins.contains(&"*") {
        "frame-ancestors *".into()
    } else {
        format!("frame-ancestors 'self' {}", origins.join(" "))
            .trim_end()
            .to_string()
    }
}

pub async fn agent_page(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    // The inbox must never be framed (clickjacking).
    let mut response = serve(&req, "agent.html", Some("frame-ancestors 'none'"))?;
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

/// The API reference: renders `/api/v1/openapi.json` with `static/js/docs.js`.
pub async fn docs_page(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, "docs.html", Some("frame-ancestors 'none'"))
}

pub async fn widget(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, "widget.js", None)
}

pub async fn static_file(
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    // Pages are served at their own routes, with their own headers.
    if path.ends_with(".html") {
        return Err(ApiError::NotFound);
    }
    serve(&req, &path, None)
}

/// Serves an embedded file with its type, an ETag, and `304` when the client has it.
fn serve(
    req: &HttpRequest,
    path: &str,
    frame_ancestors: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let file = Assets::get(path).ok_or(ApiError::NotFound)?;
    let etag = EntityTag::new_strong(hex::encode(&file.metadata.sha256_hash()[..16]));
    let cached = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag.to_string())
        });
    let mut response = if cached {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if let Some(frame_ancestors) = frame_ancestors {
        response.insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!("{CSP_BASE}; {frame_ancestors}"),
        ));
    }
    if cached {
        return Ok(response.finish());
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let content_type = match mime.type_() {
        mime_guess::mime::TEXT | mime_guess::mime::APPLICATION
            if mime.subtype() == "javascript" || mime.type_() == mime_guess::mime::TEXT =>
        {
            format!("{mime}; charset=utf-8")
        }
        _ => mime.to_string(),
    };
    Ok(response
        .insert_header((header::CONTENT_TYPE, content_type))
        .body(file.data.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::frame_ancestors;

    #[test]
    fn allowed_origins_become_frame_ancestors() {
        assert_eq!(frame_ancestors("*"), "frame-ancestors *");
        assert_eq!(
            frame_ancestors("https://a.example https://b.example:8443"),
            "frame-ancestors 'self' https://a.example https://b.example:8443"
        );
        assert_eq!(
            frame_ancestors("javascript:x; script-src 'none' https://ok.example"),
            "frame-ancestors 'self' https://ok.example"
        );
        assert_eq!(frame_ancestors(""), "frame-ancestors 'self'");
    }
}
