//! `/api/v1/chats/{id}/attachments` (upload) and `/api/v1/attachments/{id}` (download).
//!
//! The type of a file is detected from its bytes, never taken from the client; only a few
//! raster image types are shown inline, everything else downloads, and every download is
//! sandboxed so an uploaded page or script can never run on this origin.

use actix_multipart::{Multipart, MultipartError};
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use crate::config::Config;
use crate::domain::{Caller, ClientId, MessageBody};
use crate::http::api::messages::created_or_ok;
use crate::http::error::ApiError;
use crate::http::extract::client_ip;
use crate::services::attachments::{self, Upload, INLINE_TYPES};
use crate::services::messages::MessageService;
use crate::store::Store;

/// The parts of the multipart form this endpoint reads.
#[derive(Default)]
struct Form {
    file: Option<(String, Vec<u8>)>,
    client_id: Option<String>,
    body: Option<String>,
}

/// `POST /api/v1/chats/{id}/attachments` (multipart: `file`, optional `client_id` and `body`)
/// → `201 {message}`, or `200 {message}` for a repeated `client_id`.
pub async fn upload_attachment(
    messages: web::Data<MessageService>,
    config: web::Data<Config>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    messages.check_send(client_ip(&req), &caller)?;
    let form = read_form(payload, config.max_upload).await?;
    let (name, data) = form
        .file
        .ok_or_else(|| ApiError::invalid("the form needs a file field named `file`"))?;
    let upload = Upload::new(&name, data)?;
    let body = MessageBody::parse(
        form.body
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| upload.attachment.name.clone()),
    )?;
    let client_id = form.client_id.map(ClientId::parse).transpose()?;
    let (message, created) = messages
        .append(caller, path.into_inner(), body, client_id, Some(upload))
        .await?;
    Ok(created_or_ok(created).json(json!({ "message": message })))
}

/// Reads the form, refusing a file over `max_bytes` as soon as it passes the limit.
async fn read_form(mut payload: Multipart, max_bytes: usize) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(multipart_error)?;
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" if form.file.is_none() => {
                let file_name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .unwrap_or("file")
                    .to_string();
                let mut data = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(multipart_error)?;
                    if data.len() + chunk.len() > max_bytes {
                        return Err(ApiError::PayloadTooLarge(format!(
                            "the file is larger than {max_bytes} bytes"
                        )));
                    }
                    data.extend_from_slice(&chunk);
                }
                form.file = Some((file_name, data));
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

fn multipart_error(error: MultipartError) -> ApiError {
    match error {
        MultipartError::ContentTypeMissing | MultipartError::ContentTypeIncompatible => {
            ApiError::UnsupportedMediaType("uploads must be multipart/form-data".into())
        }
        other => ApiError::bad_request(format!("malformed multipart body: {other}")),
    }
}

/// `GET /api/v1/attachments/{id}` → the bytes, only to the chat's visitor and agents.
pub async fn download_attachment(
    store: web::Data<Store>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = attachments::download(&store, caller, path.into_inner()).await?;
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
