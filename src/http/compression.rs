//! Which answers are compressed: only bodies of [`MIN_COMPRESSED_BYTES`] and more.
//!
//! actix's `Compress` compresses every answer the client accepts compressed, and a browser
//! accepts `gzip, deflate, br, zstd`. For the answers of a chat (a poll's one message, a
//! send's `201`, about 1 KB) that cost more than it saved: brotli's encoder is set up for
//! each answer, and a body over 1 KiB is encoded on the blocking pool, so the answer leaves
//! in two writes. Measured on the 2-core VM with a browser's `Accept-Encoding`: 1,150 µs of
//! server CPU per 1,250-byte poll answer against 370 µs uncompressed, to save 800 bytes.
//!
//! `Compress` leaves alone an answer that already has a `Content-Encoding`, so
//! [`leave_small_uncompressed`] (inside it) marks a small answer `identity`, and
//! [`drop_identity_marker`] (outside it) takes the mark off again before it is sent.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING};

/// Bodies below this are sent as they are: the pages, scripts and long lists still shrink.
pub const MIN_COMPRESSED_BYTES: u64 = 4096;

const IDENTITY: HeaderValue = HeaderValue::from_static("identity");

/// Middleware, wrapped just inside `Compress`: marks an answer whose whole body is under
/// [`MIN_COMPRESSED_BYTES`] as not to be compressed.
pub fn leave_small_uncompressed() -> EditHeaders {
    EditHeaders(|headers, size| {
        if is_small(size) && !headers.contains_key(CONTENT_ENCODING) {
            headers.insert(CONTENT_ENCODING, IDENTITY);
        }
    })
}

/// Middleware, wrapped just outside `Compress`: removes the mark, so the client gets no
/// `Content-Encoding` for an uncompressed body.
pub fn drop_identity_marker() -> EditHeaders {
    EditHeaders(|headers, _| {
        if headers.get(CONTENT_ENCODING) == Some(&IDENTITY) {
            headers.remove(CONTENT_ENCODING);
        }
    })
}

/// A body known to be small. A stream (an attachment) is left to `Compress`'s own rules.
fn is_small(size: BodySize) -> bool {
    matches!(size, BodySize::Sized(bytes) if bytes < MIN_COMPRESSED_BYTES)
}

/// Edits the headers of every answer, given its body's size. Written as a `Transform`, not
/// with `from_fn`, because that boxes each request's future: ~100 bytes more on every
/// parked poll, for each of the two layers.
#[derive(Clone, Copy)]
pub struct EditHeaders(fn(&mut HeaderMap, BodySize));

impl<S, B> Transform<S, ServiceRequest> for EditHeaders
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = EditHeadersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(EditHeadersService {
            service,
            edit: self.0,
        }))
    }
}

pub struct EditHeadersService<S> {
    service: S,
    edit: fn(&mut HeaderMap, BodySize),
}

impl<S, B> Service<ServiceRequest> for EditHeadersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Edited<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Edited {
            answer: self.service.call(req),
            edit: self.edit,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner answer's future, and the edit to make to its headers.
    pub struct Edited<F> {
        #[pin]
        answer: F,
        edit: fn(&mut HeaderMap, BodySize),
    }
}

impl<F, B> Future for Edited<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.answer.poll(cx))?;
        let size = response.response().body().size();
        (this.edit)(response.headers_mut(), size);
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::ACCEPT_ENCODING;
    use actix_web::middleware::Compress;
    use actix_web::{test, web, App, HttpResponse};

    use super::*;

    #[actix_web::test]
    async fn small_answers_go_out_as_they_are_and_large_ones_compressed() {
        let app = test::init_service(
            App::new()
                .wrap(leave_small_uncompressed())
                .wrap(Compress::default())
                .wrap(drop_identity_marker())
                .route(
                    "/small",
                    web::get().to(|| async { HttpResponse::Ok().body("a".repeat(1500)) }),
                )
                .route(
                    "/large",
                    web::get().to(|| async { HttpResponse::Ok().body("a".repeat(5000)) }),
                ),
        )
        .await;
        for (path, compressed) in [("/small", false), ("/large", true)] {
            let request = test::TestRequest::get()
                .uri(path)
                .insert_header((ACCEPT_ENCODING, "gzip, deflate, br, zstd"))
                .to_request();
            let response = test::call_service(&app, request).await;
            let encoding = response.headers().get(CONTENT_ENCODING).cloned();
            let body = test::read_body(response).await;
            if compressed {
                assert!(
                    encoding.as_ref().is_some_and(|e| e != "identity"),
                    "{path}: {encoding:?}"
                );
                assert!(body.len() < 5000, "{path}: {} bytes", body.len());
            } else {
                assert_eq!(encoding, None, "{path}");
                assert_eq!(body.len(), 1500, "{path}");
            }
        }
    }
}
