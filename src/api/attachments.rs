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

use crate::api::chats::visible_chat;
use crate::api::client_ip;
use crate::api::messages::append;
use crate::auth::Caller;
use crate::domain::{self, ClientId, MessageBody};
use crate::error::ApiError;
use crate::model::Attachment;
use crate::state::AppState;
use crate::store::attachments;

/// Types a browser may show inline: raster images only (SVG can carry script).
const INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
];

/// A file ready to be stored with its message.
pub struct Upload {
    pub attachment: Attachment,
    pub data: Vec<u8>,
}

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
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .check_send(client_ip(&req, state.config.trust_proxy), &caller)?;
    let form = read_form(payload, state.config.max_upload).await?;
    let (name, data) = form
        .file
        .ok_or_else(|| ApiError::invalid("the form needs a file field named `file`"))?;
    if data.is_empty() {
        return Err(ApiError::invalid("the file is empty"));
    }
    let name = clean_file_name(&name);
    let body = MessageBody::parse(
        form.body
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| name.clone()),
    )?;
    let client_id = form.client_id.map(ClientId::parse).transpose()?;
    let id = domain::new_id();
    let upload = Upload {
        attachment: Attachment {
            url: Attachment::url_for(&id),
            id,
            name,
            size: data.len() as i64,
            content_type: detect_content_type(&data),
        },
        data,
    };
    let (message, created) = append(
        &state,
        caller,
        path.into_inner(),
        body,
        client_id,
        Some(upload),
    )
    .await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(json!({ "message": message })))
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

/// The type the bytes say they are; text if they are UTF-8, else opaque bytes.
pub fn detect_content_type(data: &[u8]) -> String {
    match infer::get(data) {
        Some(kind) => kind.mime_type().to_string(),
        None if std::str::from_utf8(data).is_ok() => "text/plain; charset=utf-8".into(),
        None => "application/octet-stream".into(),
    }
}

/// The last path component, without control characters, at most 200 characters.
pub fn clean_file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let name = name.trim().trim_start_matches('.').to_string();
    if name.is_empty() {
        "file".into()
    } else {
        name
    }
}

/// `GET /api/v1/attachments/{id}` → the bytes, only to the chat's visitor and agents.
pub async fn download_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let file = state
        .store
        .read(move |conn| {
            let file = attachments::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            visible_chat(conn, &file.chat_id, &caller)?;
            Ok(file)
        })
        .await?;
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
        .insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ))
        .body(file.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_the_bytes() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0];
        assert_eq!(detect_content_type(&png), "image/png");
        assert_eq!(detect_content_type(b"hello"), "text/plain; charset=utf-8");
        assert_eq!(
            detect_content_type(&[0xff, 0xfe, 0x00, 0x81]),
            "application/octet-stream"
        );
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\\\x\\\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_file_name("..."), "file");
        assert_eq!(clean_file_name(&"x".repeat(500)).len(), 200);
    }
}
