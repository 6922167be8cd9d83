//! Files sent in a chat: what a file is (from its bytes, never from the client), its name,
//! how its bytes reach the database without being held in memory, and who may download it.

use std::io;

use crate::domain::{self, text, Attachment, Caller, DomainError};
use crate::services::access::visible_chat;
use crate::store::attachments::{self, Download};
use crate::store::{Db, Store};

/// Types a browser may show inline: raster images only (SVG can carry script).
pub const INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
];

/// A received file's bytes, kept out of memory by whoever received them (the HTTP layer
/// spools an upload to an anonymous temporary file).
pub trait FileContent: Send {
    /// The exact number of bytes.
    fn size(&self) -> u64;
    /// The first bytes (all of a small file), enough to tell the type.
    fn head(&self) -> &[u8];
    /// Whether the head is UTF-8 text, a character cut at its end included.
    fn head_is_utf8(&self) -> bool;
    /// Writes every byte, from the first, to `out` (the database's incoming row: SQLite's
    /// blob of exactly [`Self::size`] bytes, or PostgreSQL's `COPY`). Blocking.
    fn copy_to(&mut self, out: &mut dyn io::Write) -> io::Result<()>;
}

/// A file ready to be stored with its message.
pub struct Upload {
    pub attachment: Attachment,
    content: Box<dyn FileContent>,
}

impl Upload {
    /// A received file: its name cleaned, its type detected from its first bytes.
    pub fn new(raw_name: &str, content: Box<dyn FileContent>) -> Result<Self, DomainError> {
        if content.size() == 0 {
            return Err(DomainError::invalid("the file is empty"));
        }
        let size = i64::try_from(content.size())
            .map_err(|_| DomainError::TooLarge("the file is too large".into()))?;
        let id = domain::new_id();
        Ok(Self {
            attachment: Attachment {
                url: Attachment::url_for(&id),
                id,
                name: clean_file_name(raw_name)?,
                size,
                content_type: detect_content_type(content.head(), content.head_is_utf8()),
            },
            content,
        })
    }

    /// Stores the file in the write transaction and returns what its message shows. The
    /// bytes are streamed into the row (see [`attachments::insert`]), so no copy of the
    /// whole file is ever in memory.
    pub fn save(mut self, db: &Db, chat_id: &str) -> Result<Attachment, DomainError> {
        let content = &mut self.content;
        attachments::insert(db, chat_id, &self.attachment, &domain::now(), |out| {
            content.copy_to(out)
        })?;
        Ok(self.attachment)
    }
}

/// The type the first bytes say the file is; text if they are UTF-8, else opaque bytes.
pub fn detect_content_type(head: &[u8], head_is_utf8: bool) -> String {
    match infer::get(head) {
        Some(kind) => kind.mime_type().to_string(),
        None if head_is_utf8 => "text/plain; charset=utf-8".into(),
        None => "application/octet-stream".into(),
    }
}

/// The last path component, without control characters, at most 200 characters; a name
/// with bidi controls (which can disguise an extension: "invoice" + U+202E + "fdp.exe") or nothing
/// visible in it is refused.
pub fn clean_file_name(raw: &str) -> Result<String, DomainError> {
    text::check_file_name(raw).map_err(|e| DomainError::invalid(e.to_string()))
}

/// The file, only to the chat's visitor and agents (others get `NotFound`).
pub async fn download(store: &Store, caller: Caller, id: String) -> Result<Download, DomainError> {
    store
        .read(move |db| {
            let file = attachments::find(db, &id)?.ok_or(DomainError::NotFound)?;
            visible_chat(db, &file.chat_id, &caller)?;
            Ok(file)
        })
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Bytes in memory, standing in for a spooled upload.
    struct InMemory(Vec<u8>);

    impl FileContent for InMemory {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn head(&self) -> &[u8] {
            &self.0
        }
        fn head_is_utf8(&self) -> bool {
            std::str::from_utf8(&self.0).is_ok()
        }
        fn copy_to(&mut self, out: &mut dyn io::Write) -> io::Result<()> {
            out.write_all(&self.0)
        }
    }

    fn upload(name: &str, bytes: &[u8]) -> Result<Upload, DomainError> {
        Upload::new(name, Box::new(InMemory(bytes.to_vec())))
    }

    #[test]
    fn content_types_come_from_the_bytes() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0];
        assert_eq!(detect_content_type(&png, false), "image/png");
        assert_eq!(
            detect_content_type(b"hello", true),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            detect_content_type(&[0xff, 0xfe, 0x00, 0x81], false),
            "application/octet-stream"
        );
        let text = upload("a.png", b"plain words").unwrap();
        assert_eq!(text.attachment.content_type, "text/plain; charset=utf-8");
        assert_eq!(text.attachment.size, 11);
        assert_eq!(text.attachment.name, "a.png");
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(matches!(upload("a.txt", b""), Err(DomainError::Invalid(_))));
    }

    #[test]
    fn save_streams_the_bytes_into_a_row_of_their_size() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE attachments (id TEXT PRIMARY KEY, chat_id TEXT, name TEXT,
             size INTEGER, content_type TEXT, data BLOB NOT NULL, created_at TEXT);",
        )
        .unwrap();
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let attachment = upload("x.bin", &bytes)
            .unwrap()
            .save(&Db::Sqlite(&conn), "c1")
            .unwrap();

        let (size, data): (i64, Vec<u8>) = conn
            .query_row(
                "SELECT size, data FROM attachments WHERE id = ?1",
                [&attachment.id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(size, bytes.len() as i64);
        assert!(data == bytes, "the stored bytes differ");
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        let clean = |raw: &str| clean_file_name(raw).unwrap();
        assert_eq!(clean("../../etc/passwd"), "passwd");
        assert_eq!(clean("C:\\\\x\\\\report.pdf"), "report.pdf");
        assert_eq!(clean("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean("..."), "file");
        assert_eq!(clean(&"x".repeat(500)).chars().count(), 200);
        assert!(clean_file_name("invoice\u{202E}fdp.exe").is_err());
        assert!(clean_file_name("\u{200B}\u{200B}").is_err());
    }
}
