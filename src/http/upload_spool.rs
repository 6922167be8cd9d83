//! Spools an uploaded multipart file to a temporary file on disk instead of
//! collecting it in memory, then streams it into the database (an SQLite
//! incremental blob, or PostgreSQL's `COPY`).
//!
//! Memory per upload stays bounded (one 64 KiB write buffer, the chunk being
//! handled and an 8 KiB head kept for type sniffing) however large or slow the
//! upload is, so stalled uploads can no longer pile up in RSS.
//!
//! The spool is an anonymous file (`O_TMPFILE` on Linux, otherwise created and
//! unlinked at once) in the directory the caller names, with mode 0600. It has
//! no name anybody could open, and the kernel frees its space as soon as the
//! handle is closed: on drop, on any error, and even if the process dies.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use actix_multipart::{Field, MultipartError};
use futures_util::StreamExt;

use crate::services::attachments::FileContent;

/// How many leading bytes [`SpooledFile::head`] keeps for type sniffing.
pub const HEAD_LEN: usize = 8 * 1024;

/// Write and copy granularity: big enough for few syscalls and blocking-pool
/// hops, small enough that many concurrent uploads stay cheap.
const CHUNK_LEN: usize = 64 * 1024;

/// Why an upload could not be spooled. The messages are shown to users.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file passed the size limit; nothing of it is kept.
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: u64 },
    /// The client sent a broken form or went away mid-upload.
    #[error("malformed multipart body: {0}")]
    Multipart(#[from] MultipartError),
    /// The disk filled up while spooling (map to 507).
    #[error("the server is out of storage space; please try again later")]
    StorageFull,
    /// Any other local I/O failure (map to 500; log the source).
    #[error("the upload could not be stored; please try again later")]
    Io(#[source] io::Error),
}

impl From<io::Error> for SpoolError {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::StorageFull {
            SpoolError::StorageFull
        } else {
            SpoolError::Io(error)
        }
    }
}

/// A completely received upload, held in an anonymous temporary file.
///
/// Dropping it frees the disk space.
#[derive(Debug)]
pub struct SpooledFile {
    /// The file name the client sent (`"file"` if none), NOT sanitised.
    pub name: String,
    /// The exact number of bytes received.
    pub size: u64,
    /// The first `min(size, HEAD_LEN)` bytes, for content-type sniffing.
    pub head: Vec<u8>,
    file: File,
}

impl SpooledFile {
    /// Rewinds the spool and returns a reader over exactly `size` bytes.
    pub fn reader(&mut self) -> io::Result<io::Take<&mut File>> {
        self.file.seek(SeekFrom::Start(0))?;
        Ok((&mut self.file).take(self.size))
    }

    /// Whether `head` is UTF-8 text, allowing a character cut in two at its
    /// end when the head is only the start of a longer file (a plain
    /// `str::from_utf8(&head)` would call such text binary).
    pub fn head_is_utf8(&self) -> bool {
        match std::str::from_utf8(&self.head) {
            Ok(_) => true,
            Err(error) => error.error_len().is_none() && (self.head.len() as u64) < self.size,
        }
    }

    /// Streams the whole file in 64 KiB chunks to `out` (e.g. PostgreSQL's `COPY`, or a
    /// `Vec`), from its start. Fails if the spool holds fewer than `size` bytes.
    /// Blocking: call it where the connection is used (`spawn_blocking`).
    pub fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let size = self.size;
        let mut reader = self.reader()?;
        let mut buf = vec![0u8; CHUNK_LEN];
        let mut copied: u64 = 0;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            copied += n as u64;
        }
        // A short read means the spool was truncated underneath us; the row would
        // silently miss bytes, so fail instead.
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the spool held {copied} of {size} bytes"),
            ));
        }
        Ok(())
    }

    /// Streams the whole file in 64 KiB chunks into `blob`, from its start.
    ///
    /// The blob must have exactly `size` bytes, e.g. opened with
    /// `Connection::blob_open` on a row inserted with `zeroblob(size)`; an
    /// incremental blob cannot grow, and a bigger one would keep zero bytes.
    /// Blocking: call it where the connection is used (`spawn_blocking`).
    pub fn write_into(&mut self, blob: &mut rusqlite::blob::Blob<'_>) -> io::Result<()> {
        if blob.len() as u64 != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the blob holds {} bytes but the upload has {}",
                    blob.len(),
                    self.size
                ),
            ));
        }
        blob.seek(SeekFrom::Start(0))?;
        self.copy_to(blob)
    }
}

/// How the rules see a spooled upload (they store it without knowing where it came from).
impl FileContent for SpooledFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn head(&self) -> &[u8] {
        &self.head
    }

    fn head_is_utf8(&self) -> bool {
        SpooledFile::head_is_utf8(self)
    }

    fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        SpooledFile::copy_to(self, out)
    }
}

/// Streams the multipart `field` into a new anonymous temporary file in `dir`.
///
/// Refuses with [`SpoolError::TooLarge`] as soon as the received size passes
/// `max_bytes` (before writing the offending chunk). On any error the partial
/// spool is dropped and its space freed. `dir` must exist; file I/O runs on
/// tokio's blocking pool so the async worker never waits on the disk.
pub async fn spool_field(
    field: &mut Field,
    dir: &Path,
    max_bytes: u64,
) -> Result<SpooledFile, SpoolError> {
    let name = field
        .content_disposition()
        .and_then(|d| d.get_filename())
        .unwrap_or("file")
        .to_string();
    let dir = dir.to_path_buf();
    let mut file = blocking(move || create_spool(&dir)).await?;
    let mut size: u64 = 0;
    let mut head = Vec::new();
    let mut pending = Vec::with_capacity(CHUNK_LEN);
    while let Some(chunk) = field.next().await {
        let chunk = chunk?;
        size = size.saturating_add(chunk.len() as u64);
        if size > max_bytes {
            return Err(SpoolError::TooLarge { max: max_bytes });
        }
        if head.len() < HEAD_LEN {
            let take = (HEAD_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        pending.extend_from_slice(&chunk);
        if pending.len() >= CHUNK_LEN {
            (file, pending) = write_pending(file, pending).await?;
        }
    }
    if !pending.is_empty() {
        (file, _) = write_pending(file, pending).await?;
    }
    Ok(SpooledFile {
        name,
        size,
        head,
        file,
    })
}

/// An anonymous file in `dir`, readable and writable by this user only.
fn create_spool(dir: &Path) -> io::Result<File> {
    let file = tempfile::tempfile_in(dir)?;
    // O_TMPFILE honours the umask rather than 0600; the file has no name yet,
    // so nobody can open it before this fchmod.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Appends `buf` to the spool on the blocking pool and hands both back, the
/// buffer emptied for reuse. If the caller's future is dropped meanwhile, the
/// closure still owns the file and closes it when done, freeing the space.
async fn write_pending(mut file: File, mut buf: Vec<u8>) -> io::Result<(File, Vec<u8>)> {
    blocking(move || {
        file.write_all(&buf)?;
        buf.clear();
        Ok((file, buf))
    })
    .await
}

async fn blocking<T, F>(work: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_multipart::Multipart;
    use actix_web::dev::ServerHandle;
    use actix_web::{web, App, HttpResponse, HttpServer};
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::time::Duration;
    use tokio::sync::mpsc;

    #[derive(Debug)]
    enum Outcome {
        Stored {
            name: String,
            size: u64,
            head: Vec<u8>,
            bytes: Vec<u8>,
            mode: u32,
        },
        TooLarge {
            max: u64,
        },
        Multipart,
        StorageFull,
        Io,
    }

    struct Harness {
        dir: PathBuf,
        max: u64,
        outcomes: mpsc::UnboundedSender<Outcome>,
    }

    /// A stand-in for the attachment handler: spools the `file` field and
    /// reports what it got.
    async fn upload(mut form: Multipart, harness: web::Data<Harness>) -> HttpResponse {
        while let Some(field) = form.next().await {
            let Ok(mut field) = field else {
                harness.outcomes.send(Outcome::Multipart).unwrap();
                return HttpResponse::BadRequest().finish();
            };
            if field.name() != Some("file") {
                while let Some(chunk) = field.next().await {
                    chunk.unwrap();
                }
                continue;
            }
            let (outcome, response) = match spool_field(&mut field, &harness.dir, harness.max).await
            {
                Ok(mut spooled) => {
                    let mut bytes = Vec::new();
                    spooled.reader().unwrap().read_to_end(&mut bytes).unwrap();
                    let mode = mode_of(&spooled.file.metadata().unwrap());
                    let outcome = Outcome::Stored {
                        name: spooled.name,
                        size: spooled.size,
                        head: spooled.head,
                        bytes,
                        mode,
                    };
                    (outcome, HttpResponse::Ok().finish())
                }
                Err(SpoolError::TooLarge { max }) => (
                    Outcome::TooLarge { max },
                    HttpResponse::PayloadTooLarge().finish(),
                ),
                Err(SpoolError::Multipart(_)) => {
                    (Outcome::Multipart, HttpResponse::BadRequest().finish())
                }
                Err(SpoolError::StorageFull) => (
                    Outcome::StorageFull,
                    HttpResponse::InsufficientStorage().finish(),
                ),
                Err(SpoolError::Io(_)) => {
                    (Outcome::Io, HttpResponse::InternalServerError().finish())
                }
            };
            harness.outcomes.send(outcome).unwrap();
            return response;
        }
        HttpResponse::BadRequest().finish()
    }

    fn serve(dir: &Path, max: u64) -> (SocketAddr, ServerHandle, mpsc::UnboundedReceiver<Outcome>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (outcomes, received) = mpsc::unbounded_channel();
        let harness = web::Data::new(Harness {
            dir: dir.to_path_buf(),
            max,
            outcomes,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(harness.clone())
                .route("/upload", web::post().to(upload))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (addr, handle, received)
    }

    async fn next_outcome(received: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
        tokio::time::timeout(Duration::from_secs(30), received.recv())
            .await
            .unwrap()
            .unwrap()
    }

    /// Deterministic, non-repeating-looking bytes so misplaced chunks show.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8)
            .collect()
    }

    async fn post_file(addr: SocketAddr, data: Vec<u8>) -> reqwest::Result<reqwest::StatusCode> {
        let form = reqwest::multipart::Form::new()
            .text("body", "see attached")
            .part(
                "file",
                reqwest::multipart::Part::bytes(data).file_name("report.bin"),
            );
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/upload"))
            .multipart(form)
            .send()
            .await?;
        Ok(response.status())
    }

    #[cfg(unix)]
    fn mode_of(meta: &std::fs::Metadata) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }

    #[cfg(not(unix))]
    fn mode_of(_meta: &std::fs::Metadata) -> u32 {
        0o600
    }

    /// The spools this process holds open in `dir`, found through
    /// /proc/self/fd because anonymous files never appear in `dir` itself.
    #[cfg(target_os = "linux")]
    fn open_spools(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|entry| {
                let fd = entry.ok()?.path();
                let target = std::fs::read_link(&fd).ok()?;
                target.starts_with(dir).then_some(fd)
            })
            .collect()
    }

    fn dir_is_empty(dir: &Path) -> bool {
        std::fs::read_dir(dir).unwrap().next().is_none()
    }

    #[actix_web::test]
    async fn spools_a_multi_megabyte_upload_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, server, mut received) = serve(dir.path(), 10 * 1024 * 1024);
        let data = pattern(3 * 1024 * 1024 + 12_345);

        let status = post_file(addr, data.clone()).await.unwrap();

        assert_eq!(status, reqwest::StatusCode::OK);
        match next_outcome(&mut received).await {
            Outcome::Stored {
                name,
                size,
                head,
                bytes,
                mode,
            } => {
                assert_eq!(name, "report.bin");
                assert_eq!(size, data.len() as u64);
                assert_eq!(head, data[..HEAD_LEN]);
                assert!(bytes == data, "the spooled bytes differ from the upload");
                assert_eq!(mode, 0o600);
            }
            other => panic!("expected the file to be stored, got {other:?}"),
        }
        assert!(dir_is_empty(dir.path()));
        #[cfg(target_os = "linux")]
        assert!(open_spools(dir.path()).is_empty());
        server.stop(true).await;
    }

    #[actix_web::test]
    async fn small_file_keeps_whole_head_and_exact_limit_passes() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, server, mut received) = serve(dir.path(), 100);

        post_file(addr, b"hello".to_vec()).await.unwrap();
        match next_outcome(&mut received).await {
            Outcome::Stored {
                size, head, bytes, ..
            } => {
                assert_eq!(size, 5);
                assert_eq!(head, b"hello");
                assert_eq!(bytes, b"hello");
            }
            other => panic!("expected the file to be stored, got {other:?}"),
        }

        post_file(addr, pattern(100)).await.unwrap();
        match next_outcome(&mut received).await {
            Outcome::Stored { size, .. } => assert_eq!(size, 100),
            other => panic!("a file of exactly the limit must pass, got {other:?}"),
        }
        server.stop(true).await;
    }

    #[actix_web::test]
    async fn too_large_upload_is_refused_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let max = 1024 * 1024;
        let (addr, server, mut received) = serve(dir.path(), max);

        // The server answers 413 mid-body, so the client may see either the
        // status or a reset connection; what matters is the server side.
        let status = post_file(addr, pattern(4 * 1024 * 1024)).await;
        if let Ok(status) = status {
            assert_eq!(status, reqwest::StatusCode::PAYLOAD_TOO_LARGE);
        }

        match next_outcome(&mut received).await {
            Outcome::TooLarge { max: got } => assert_eq!(got, max),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(dir_is_empty(dir.path()));
        #[cfg(target_os = "linux")]
        assert!(open_spools(dir.path()).is_empty());
        server.stop(true).await;
    }

    /// A stalled upload sits on disk (not in memory) with mode 0600, and its
    /// space is released once the client goes away.
    #[cfg(target_os = "linux")]
    #[actix_web::test]
    async fn stalled_upload_is_on_disk_and_freed_when_the_client_vanishes() {
        use std::io::Write as _;

        let dir = tempfile::tempdir().unwrap();
        let (addr, server, mut received) = serve(dir.path(), 10 * 1024 * 1024);
        let sent = 1024 * 1024;
        let (hang_up, wait_for_hang_up) = std::sync::mpsc::channel::<()>();
        let client = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let preamble = "--XBOUNDARYX\r\n\
                Content-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
                Content-Type: application/octet-stream\r\n\r\n";
            // Promise 5 MiB, send 1 MiB, then stall.
            let head = format!(
                "POST /upload HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Type: multipart/form-data; boundary=XBOUNDARYX\r\n\
                 Content-Length: {}\r\n\r\n{preamble}",
                preamble.len() + 5 * 1024 * 1024,
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&pattern(sent)).unwrap();
            stream.flush().unwrap();
            let _ = wait_for_hang_up.recv();
            drop(stream);
        });

        // Wait until (nearly) everything sent has reached the spool.
        let mut spool = None;
        for _ in 0..200 {
            if let Some(fd) = open_spools(dir.path()).pop() {
                let meta = std::fs::metadata(&fd).unwrap();
                if meta.len() >= (sent - CHUNK_LEN) as u64 {
                    spool = Some(meta);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let spool = spool.expect("the stalled upload never reached a spool file");
        assert_eq!(mode_of(&spool), 0o600);
        assert!(dir_is_empty(dir.path()), "the spool must have no name");

        hang_up.send(()).unwrap();
        client.join().unwrap();
        // actix reports the cut-off body to the handler as a payload error;
        // the spool is dropped before the handler gets to report it.
        match next_outcome(&mut received).await {
            Outcome::Multipart => {}
            other => panic!("expected a multipart error, got {other:?}"),
        }
        assert!(
            open_spools(dir.path()).is_empty(),
            "the spool was not released after the client left"
        );
        server.stop(true).await;
    }

    fn spool_of(data: &[u8]) -> SpooledFile {
        let mut file = create_spool(&std::env::temp_dir()).unwrap();
        file.write_all(data).unwrap();
        SpooledFile {
            name: "x.bin".into(),
            size: data.len() as u64,
            head: data[..data.len().min(HEAD_LEN)].to_vec(),
            file,
        }
    }

    #[test]
    fn write_into_round_trips_through_an_incremental_blob() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE attachments (id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
        )
        .unwrap();
        // Several full chunks plus a ragged tail.
        let data = pattern(5 * CHUNK_LEN + 777);
        let mut spooled = spool_of(&data);

        conn.execute(
            "INSERT INTO attachments (data) VALUES (zeroblob(?1))",
            [spooled.size as i64],
        )
        .unwrap();
        let rowid = conn.last_insert_rowid();
        {
            let mut blob = conn
                .blob_open(rusqlite::MAIN_DB, c"attachments", c"data", rowid, false)
                .unwrap();
            spooled.write_into(&mut blob).unwrap();
        }

        let stored: Vec<u8> = conn
            .query_row(
                "SELECT data FROM attachments WHERE id = ?1",
                [rowid],
                |row| row.get(0),
            )
            .unwrap();
        assert!(stored == data, "the blob differs from the spooled bytes");

        // The spool can be read again afterwards.
        let mut again = Vec::new();
        spooled.reader().unwrap().read_to_end(&mut again).unwrap();
        assert!(again == data);
    }

    #[test]
    fn copy_to_writes_every_byte_and_can_repeat() {
        let data = pattern(3 * CHUNK_LEN + 5);
        let mut spooled = spool_of(&data);
        for _ in 0..2 {
            let mut out = Vec::new();
            spooled.copy_to(&mut out).unwrap();
            assert!(out == data, "the copy differs from the spooled bytes");
        }
    }

    #[test]
    fn write_into_refuses_a_blob_of_the_wrong_size() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE attachments (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
             INSERT INTO attachments (data) VALUES (zeroblob(10));",
        )
        .unwrap();
        let mut spooled = spool_of(b"eleven byte");
        let mut blob = conn
            .blob_open(rusqlite::MAIN_DB, c"attachments", c"data", 1, false)
            .unwrap();

        let error = spooled.write_into(&mut blob).unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn head_is_utf8_tolerates_only_a_cut_at_the_end_of_a_longer_file() {
        let text = "é".repeat(HEAD_LEN); // two bytes per character
        let mut cut = spool_of(text.as_bytes());
        cut.head = text.as_bytes()[..HEAD_LEN - 1].to_vec();
        assert!(cut.head_is_utf8(), "a character cut by the head limit");

        let truncated = spool_of(&text.as_bytes()[..3]);
        assert!(
            !truncated.head_is_utf8(),
            "a whole file ending mid-character"
        );

        assert!(spool_of("plain text".as_bytes()).head_is_utf8());
        assert!(!spool_of(&[b'a', 0xff, b'b']).head_is_utf8());
    }

    #[test]
    fn a_full_disk_is_reported_as_storage_full() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert!(matches!(SpoolError::from(full), SpoolError::StorageFull));
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(matches!(SpoolError::from(other), SpoolError::Io(_)));
    }
}
