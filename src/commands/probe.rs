//! `kvop probe URL`: asks one of kvop's endpoints (`/readyz`, `/healthz`) whether it is
//! well, with nothing but kvop's own image, for the chart's `helm test` hook and for
//! exec probes where no HTTP client is installed. Plain HTTP only: the endpoints are.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why the endpoint is not well.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}: only http://HOST[:PORT]/PATH URLs can be probed")]
    Url(String),
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: no answer within {} s", .timeout.as_secs())]
    Timeout { url: String, timeout: Duration },
    #[error("{url} answered {status}: {body}")]
    NotWell {
        url: String,
        status: String,
        body: String,
    },
}

/// The URL of `path` on the Service whose environment variables start with `prefix`
/// (`PREFIX_SERVICE_HOST`, `PREFIX_SERVICE_PORT`, as kubelet sets them in every pod).
pub fn service_url(prefix: &str, path: &str) -> Result<String, ProbeError> {
    let variable = |suffix: &str| {
        let name = format!("{prefix}_SERVICE_{suffix}");
        std::env::var(&name).map_err(|_| ProbeError::Url(format!("${name} is not set")))
    };
    if !path.starts_with('/') {
        return Err(ProbeError::Url(format!(
            "{path}: with --service-env, give the path only (/readyz)"
        )));
    }
    let host = variable("HOST")?;
    let port = variable("PORT")?;
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("http://{host}:{port}{path}"))
}

/// GETs `url`; `Ok` with the status line when it answered 200.
pub async fn probe(url: &str, timeout: Duration) -> Result<String, ProbeError> {
    let (host, path) = split(url).ok_or_else(|| ProbeError::Url(url.to_string()))?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&host).await?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout {
            url: url.to_string(),
            timeout,
        })?
        .map_err(|source| ProbeError::Io {
            url: url.to_string(),
            source,
        })?;
    let status = response.lines().next().unwrap_or_default().to_string();
    if status.split_whitespace().nth(1) == Some("200") {
        return Ok(status);
    }
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_string())
        .unwrap_or_default();
    Err(ProbeError::NotWell {
        url: url.to_string(),
        status,
        body,
    })
}

/// `http://host:port/path` → (`host:port`, `/path`); port 80 when none is given.
fn split(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let host = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Some((host, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(
            split("http://kvop-metrics.kvop-system.svc:8080/readyz"),
            Some(("kvop-metrics.kvop-system.svc:8080".into(), "/readyz".into()))
        );
        assert_eq!(split("http://host"), Some(("host:80".into(), "/".into())));
        assert_eq!(split("https://host/readyz"), None, "no TLS");
        assert_eq!(split("http:///readyz"), None);
    }
}
