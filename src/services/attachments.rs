//! Files sent in a chat: what a file is (from its bytes, never from the client), its name,
//! and who may download it.

use crate::domain::{self, Attachment, Caller, DomainError};
use crate::services::access::visible_chat;
use crate::store::attachments::{self, Download};
use crate::store::Store;

/// Types a browser may show inline: raster images only (SVG can carry script).
pub const INLINE_TYPES: &[&str] = &[
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

impl Upload {
    /// A received file: its name cleaned, its type detected from its bytes.
    pub fn new(raw_name: &str, data: Vec<u8>) -> Result<Self, DomainError> {
        if data.is_empty() {
            return Err(DomainError::invalid("the file is empty"));
        }
        let id = domain::new_id();
        Ok(Self {
            attachment: Attachment {
                url: Attachment::url_for(&id),
                id,
                name: clean_file_name(raw_name),
                size: data.len() as i64,
                content_type: detect_content_type(&data),
            },
            data,
        })
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

/// The file, only to the chat's visitor and agents (others get `NotFound`).
pub async fn download(store: &Store, caller: Caller, id: String) -> Result<Download, DomainError> {
    store
        .read(move |conn| {
            let file = attachments::find(conn, &id)?.ok_or(DomainError::NotFound)?;
            visible_chat(conn, &file.chat_id, &caller)?;
            Ok(file)
        })
        .await
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
