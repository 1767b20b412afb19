//! Reading a Graph answer's body safely: a size cap ([`MAX_BODY_BYTES`]) and a JSON content
//! type on success.

use super::errors::GraphError;

/// Largest answer body read (a `$batch` of 20 full pages of 999 users stays far below it);
/// a longer one fails the request instead of growing memory without bound.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub(super) enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the body chunk by chunk, stopping at [`MAX_BODY_BYTES`] (also when `Content-Length`
/// announces more).
pub(super) async fn bounded_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let announced = response.content_length().unwrap_or(0);
    if usize::try_from(announced).map_or(true, |n| n > MAX_BODY_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A success answer with a body must say it is JSON (Graph sends `application/json`, with
/// OData parameters); an HTML error page from a proxy is malformed, whatever its status.
pub(super) fn json_content_type(headers: &reqwest::header::HeaderMap) -> Result<(), GraphError> {
    let Some(value) = headers.get(reqwest::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        Ok(())
    } else {
        Err(GraphError::Malformed(format!(
            "content type {media:?} is not json"
        )))
    }
}
