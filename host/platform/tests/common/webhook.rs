//! Plain HTTP/1.1 to the operator's endpoints (webhooks, uploads) and `AdmissionReview` v1
//! bodies shaped like the Kubernetes documentation's.

use serde_json::json;

/// One plain HTTP/1.1 exchange; returns the status code and body.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let (head, code, body) = split_response(&response);
    let mut body = body.to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (code, body)
}

/// Splits a whole HTTP/1.1 response into its head, status code and body.
pub fn split_response(response: &[u8]) -> (String, u16, &[u8]) {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a full response");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (head, code, &response[split + 4..])
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

pub fn review(user: &str, groups: &[&str], object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7d1d6e4c-0000-4000-8000-000000000001",
            "kind": {"group": "vdi.dev", "version": "v1alpha1", "kind": "VDISession"},
            "resource": {"group": "vdi.dev", "version": "v1alpha1", "resource": "vdisessions"},
            "requestKind": {"group": "vdi.dev", "version": "v1alpha1", "kind": "VDISession"},
            "requestResource": {"group": "vdi.dev", "version": "v1alpha1", "resource": "vdisessions"},
            "name": object["metadata"]["name"],
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": user, "groups": groups},
            "object": object,
            "dryRun": false,
        },
    }))
    .unwrap()
}

/// Posts an AdmissionReview for `object` by `user` to the webhook `path`; returns the answer.
pub async fn post_review(
    addr: std::net::SocketAddr,
    path: &str,
    user: &str,
    groups: &[&str],
    object: serde_json::Value,
) -> serde_json::Value {
    let body = review(user, groups, object);
    let (code, answer) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&answer));
    serde_json::from_slice(&answer).unwrap()
}
