//! `/api/v1/chats/{id}/attachments` (upload) and `/api/v1/attachments/{id}` (download).
//!
//! The type of a file is detected from its bytes, never taken from the client; only a few
//! raster image types are shown inline, everything else downloads, and every download is
//! sandboxed so an uploaded page or script can never run on this origin.

use std::path::Path;

use actix_multipart::{Multipart, MultipartError};
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use utoipa::ToSchema;

use crate::config::Config;
use crate::domain::{Caller, ClientId, DomainError, MessageBody};
use crate::http::api::messages::{created_or_ok, MessageAnswer};
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash};
use crate::http::params::ResourceId;
use crate::http::schemas::ErrorBody;
use crate::http::upload_spool::{spool_field, SpoolError, SpooledFile};
use crate::services::attachments::{self, Upload, INLINE_TYPES};
use crate::services::messages::MessageService;
use crate::services::upload_limits::UploadLimits;
use crate::store::Store;

/// The parts of the multipart form this endpoint reads.
#[derive(Default)]
struct Form {
    file: Option<SpooledFile>,
    client_id: Option<String>,
    body: Option<String>,
}

/// A file and its message, as `multipart/form-data`.
#[derive(ToSchema)]
pub struct UploadForm {
    /// The file (at most `max_upload` bytes, see `GET /api/v1/config`; not empty). Its type
    /// is detected from its bytes, never taken from the client.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// An idempotency key: 1–64 of `A-Z a-z 0-9 _ -`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", nullable = false)]
    pub client_id: Option<String>,
    /// The caption, at most 4000 characters; the file name when left out or blank.
    #[schema(nullable = false)]
    pub body: Option<String>,
}

/// Sends a file into a chat (agents, or the chat's visitor).
///
/// Answers the message that carries it; `attachment.url` downloads it. A repeated
/// `client_id` answers `200` with the original message. Visitors' uploads count against an
/// hourly quota per visitor and per address.
//
// The file goes to an anonymous temporary file beside the database and from there into
// its row, so memory per upload stays a few buffers however large or slow the upload is.
// Before any of the body is read, the upload must get a slot (per token and per address),
// fit the uploader's and the address's hourly quota (agents are exempt), and find the disk
// above its free-space floor.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/attachments",
    tag = "attachments",
    params(("id" = String, Path, description = "The chat's id.")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The new message with its attachment, committed.", body = MessageAnswer),
        (status = 200, description = "A repeated `client_id`: the original message.", body = MessageAnswer),
        (status = 400, description = "`bad_request`: a malformed multipart body.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat, or not the caller's.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the file is over `max_upload`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `multipart/form-data`.", body = ErrorBody),
        (status = 422, description = "`invalid`: no `file` field, an empty file, a bad file name, caption or `client_id`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: sending too fast, too many uploads at once, or over the hourly quota.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 507, description = "`insufficient_storage`: the server's disk is nearly full.", body = ErrorBody),
    )
)]
pub async fn upload_attachment(
    messages: web::Data<MessageService>,
    limits: web::Data<UploadLimits>,
    config: web::Data<Config>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<ResourceId>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    messages.check_send(ip, &caller)?;
    // Held until the file is stored or refused: a stalled upload keeps its slot, so one
    // token or address cannot keep hundreds of uploads open.
    let _permit = limits
        .begin(token_hash(&req)?, ip)
        .map_err(DomainError::from)?;
    let max_bytes = config.max_upload as u64;
    let exempt = caller.is_agent();
    // A larger declared body is refused with 413 once it passes the limit, not here.
    let expected = declared_length(&req).map(|len| len.min(max_bytes));
    limits
        .would_fit(caller.id(), ip, expected, exempt)
        .map_err(DomainError::from)?;
    let dir = spool_dir(&config.db);
    // Until the commit the file is on the disk twice: in the spool and in the database's
    // write-ahead log.
    let incoming = expected.unwrap_or(max_bytes).saturating_mul(2);
    limits
        .disk_has_room(dir, incoming)
        .map_err(DomainError::from)?;

    let form = read_form(payload, dir, max_bytes).await?;
    let mut file = form
        .file
        .ok_or_else(|| ApiError::invalid("the form needs a file field named `file`"))?;
    // Checked again with the real size (the declared one may be missing or a lie), and
    // booked at once so racing uploads cannot overshoot.
    limits
        .charge(caller.id(), ip, file.size, exempt)
        .map_err(DomainError::from)?;
    let name = std::mem::take(&mut file.name);
    let upload = Upload::new(&name, Box::new(file))?;
    let body = MessageBody::parse(
        form.body
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| upload.attachment.name.clone()),
    )?;
    let client_id = form.client_id.map(ClientId::parse).transpose()?;
    let (message, created) = messages
        .append(
            caller,
            path.into_inner().0,
            body,
            client_id,
            Some(upload),
            false,
        )
        .await?;
    Ok(created_or_ok(created).json(MessageAnswer { message }))
}

/// The request's `Content-Length`, if it sent a valid one.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Uploads are spooled in the database's directory: the disk the free-space floor guards
/// and the files end up on, and not a `/tmp` that may be memory.
fn spool_dir(db: &Path) -> &Path {
    match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Reads the form, spooling the file to `dir` and refusing it with 413 as soon as it passes
/// `max_bytes`.
async fn read_form(mut payload: Multipart, dir: &Path, max_bytes: u64) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(multipart_error)?;
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" if form.file.is_none() => {
                let file = spool_field(&mut field, dir, max_bytes)
                    .await
                    .map_err(spool_error)?;
                form.file = Some(file);
            }
            "client_id" | "body" => {
                let text = field
                    .bytes(64 * 1024)
                    .await
                    .map_err(|_| ApiError::PayloadTooLarge("a text field is too large".into()))?
                    .map_err(multipart_error)?;
                let text = String::from_utf8(text.to_vec())
                    .map_err(|_| ApiError::bad_request("text fields must be UTF-8"))?;
                if name == "body" {
                    form.body = Some(text);
                } else {
                    form.client_id = Some(text);
                }
            }
            // Unknown fields and extra files are drained and ignored.
            _ => {
                while let Some(chunk) = field.next().await {
                    chunk.map_err(multipart_error)?;
                }
            }
        }
    }
    Ok(form)
}

fn spool_error(error: SpoolError) -> ApiError {
    match error {
        SpoolError::TooLarge { .. } => ApiError::PayloadTooLarge(error.to_string()),
        SpoolError::Multipart(error) => multipart_error(error),
        SpoolError::StorageFull => ApiError::InsufficientStorage(error.to_string()),
        SpoolError::Io(cause) => ApiError::Internal(Box::new(cause)),
    }
}

fn multipart_error(error: MultipartError) -> ApiError {
    match error {
        MultipartError::ContentTypeMissing | MultipartError::ContentTypeIncompatible => {
            ApiError::UnsupportedMediaType("uploads must be multipart/form-data".into())
        }
        other => ApiError::bad_request(format!("malformed multipart body: {other}")),
    }
}

/// Downloads an attachment's bytes (agents, or the chat's visitor).
///
/// With the stored content type, `Content-Disposition` (`inline` only for raster images),
/// `X-Content-Type-Options: nosniff` and a sandboxing `Content-Security-Policy`.
#[utoipa::path(
    get,
    path = "/api/v1/attachments/{id}",
    tag = "attachments",
    params(("id" = String, Path, description = "The attachment's id.")),
    responses(
        (status = 200, description = "The file's bytes.", content(("*/*")),
            headers(("Content-Disposition" = String, description = "`inline` or `attachment`, with the file name."))),
        (status = 404, description = "`not_found`: no such attachment, or not in the caller's chat.", body = ErrorBody),
    )
)]
pub async fn download_attachment(
    store: web::Data<Store>,
    caller: Caller,
    path: web::Path<ResourceId>,
) -> Result<HttpResponse, ApiError> {
    let file = attachments::download(&store, caller, path.into_inner().0).await?;
    let inline = INLINE_TYPES.contains(&file.content_type.as_str());
    let ascii_name: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = ContentDisposition {
        disposition: if inline {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters: vec![
            DispositionParam::Filename(ascii_name),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: file.name.into_bytes(),
            }),
        ],
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, file.content_type))
        .insert_header(disposition)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ))
        // Never kept by the browser: after a logout, a shared computer must not show it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(file.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_spooled_in_the_databases_directory() {
        assert_eq!(
            spool_dir(Path::new("/var/lib/parley/parley.db")),
            Path::new("/var/lib/parley")
        );
        assert_eq!(spool_dir(Path::new("data/parley.db")), Path::new("data"));
        assert_eq!(spool_dir(Path::new("parley.db")), Path::new("."));
    }
}
