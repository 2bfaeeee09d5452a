//! A minimal HTTP/1.1 client (hyper) for the healthcheck subcommand, tests and embedders that
//! want the REST API without pulling in a bigger client. Plain `http://` only.

use std::time::Duration;

use axum::http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL: {0}")]
    Url(String),
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] axum::http::Error),
    #[error("timed out")]
    Timeout,
}

/// Send one request and return (status, body). The whole exchange is bounded by `timeout`.
pub async fn request(
    method: Method,
    url: &str,
    json_body: Option<String>,
    timeout: Duration,
) -> Result<(u16, String), ClientError> {
    tokio::time::timeout(timeout, request_inner(method, url, json_body))
        .await
        .map_err(|_| ClientError::Timeout)?
}

async fn request_inner(
    method: Method,
    url: &str,
    json_body: Option<String>,
) -> Result<(u16, String), ClientError> {
    let uri: Uri = url.parse().map_err(|_| ClientError::Url(url.into()))?;
    if uri.scheme_str() != Some("http") {
        return Err(ClientError::Url(format!(
            "{url}: only http:// is supported"
        )));
    }
    let auth = uri
        .authority()
        .ok_or_else(|| ClientError::Url(url.into()))?
        .clone();
    let port = auth.port_u16().unwrap_or(80);
    let stream =
        tokio::net::TcpStream::connect((auth.host().trim_matches(['[', ']']), port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, auth.as_str());
    if json_body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(Full::new(Bytes::from(json_body.unwrap_or_default())))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// GET `url` (e.g. `http://127.0.0.1:8080/healthz`); true on a 2xx answer within 5 s.
pub async fn healthy(url: &str) -> bool {
    matches!(
        request(Method::GET, url, None, Duration::from_secs(5)).await,
        Ok((200..=299, _))
    )
}
