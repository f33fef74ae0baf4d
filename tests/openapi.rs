//! `contracts/openapi.yaml` kept in step with the code: the error codes and their statuses
//! against `ErrorCode`, and the documented operations against the router of a running
//! service (each one served; no other method served on a documented path; every route of
//! the router documented). The file is read as the plain YAML subset it is written in
//! (block mappings and lists, block scalars skipped), so no YAML parser is needed.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::service::Service;
use rust_transcoder::error::ErrorCode;
use serde_json::Value;

/// The routes `rust_transcoder::api::app` serves, as `(METHOD, path template)`.
const SERVED: [(&str, &str); 5] = [
    ("POST", "/transcode"),
    ("GET", "/transcode"),
    ("PATCH", "/transcode/{transcode_id}"),
    ("GET", "/health"),
    ("GET", "/metrics"),
];

/// Methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn contract() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/openapi.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// One meaningful line of the document: its indentation and its text.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

impl<'a> Line<'a> {
    /// The key of a `key: value` or `key:` line, unquoted (`'200'` -> `200`).
    fn key(&self) -> Option<&'a str> {
        let text = self.text.strip_prefix("- ").unwrap_or(self.text);
        let (key, _) = text.split_once(':')?;
        Some(key.trim().trim_matches(|c| c == '\'' || c == '"'))
    }

    /// The value after `key:` (empty for a block).
    fn value(&self) -> &'a str {
        self.text
            .split_once(':')
            .map_or("", |(_, value)| value.trim())
    }
}

/// The document's lines without blank lines, comments and block scalar contents.
fn lines(document: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut scalar_indent: Option<usize> = None;
    for raw in document.lines() {
        let text = raw.trim_start();
        let indent = raw.len() - text.len();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(owner) = scalar_indent {
            if indent > owner {
                continue;
            }
            scalar_indent = None;
        }
        let line = Line {
            indent,
            text: text.trim_end(),
        };
        if matches!(line.value(), "|" | ">" | "|-" | ">-" | "|+" | ">+") {
            scalar_indent = Some(indent);
        }
        lines.push(line);
    }
    lines
}

/// The lines of the block under `lines[at]`: those after it, indented deeper.
fn block<'a>(lines: &'a [Line<'a>], at: usize) -> &'a [Line<'a>] {
    let indent = lines[at].indent;
    let end = lines[at + 1..]
        .iter()
        .position(|line| line.indent <= indent)
        .map_or(lines.len(), |offset| at + 1 + offset);
    &lines[at + 1..end]
}

/// The direct children of a block: `(index in block, line)` at its shallowest indent.
fn children<'a>(block: &'a [Line<'a>]) -> impl Iterator<Item = (usize, Line<'a>)> + 'a {
    let indent = block.iter().map(|line| line.indent).min().unwrap_or(0);
    block
        .iter()
        .copied()
        .enumerate()
        .filter(move |(_, line)| line.indent == indent)
}

/// The block under the key path `keys`, from the top of the document.
fn at<'a>(lines: &'a [Line<'a>], keys: &[&str]) -> &'a [Line<'a>] {
    let mut current = lines;
    for key in keys {
        let (index, _) = children(current)
            .find(|(_, line)| line.key() == Some(key))
            .unwrap_or_else(|| panic!("openapi.yaml has no {key:?} in {keys:?}"));
        current = block(current, index);
    }
    current
}

/// Every documented operation: `(METHOD, path)` -> its response statuses.
fn operations(lines: &[Line<'_>]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let paths = at(lines, &["paths"]);
    let mut operations = BTreeMap::new();
    for (path_index, path) in children(paths) {
        let path_item = block(paths, path_index);
        for (method_index, method) in children(path_item) {
            let name = method.key().unwrap();
            if !METHODS.contains(&name) {
                continue;
            }
            let operation = block(path_item, method_index);
            let statuses = at(operation, &["responses"]);
            let statuses = children(statuses)
                .map(|(_, line)| line.key().unwrap().to_owned())
                .collect();
            operations.insert(
                (name.to_uppercase(), path.key().unwrap().to_owned()),
                statuses,
            );
        }
    }
    operations
}

/// The codes of the `Error` schema's `code` enum.
fn error_codes(lines: &[Line<'_>]) -> BTreeSet<String> {
    let code = at(
        lines,
        &[
            "components",
            "schemas",
            "Error",
            "properties",
            "error",
            "properties",
            "code",
        ],
    );
    let (index, line) = children(code)
        .find(|(_, line)| line.key() == Some("enum"))
        .expect("the Error code has an enum");
    let inline = line.value();
    if let Some(list) = inline.strip_prefix('[') {
        return list
            .trim_end_matches(']')
            .split(',')
            .map(|code| code.trim().to_owned())
            .collect();
    }
    children(block(code, index))
        .map(|(_, line)| line.text.trim_start_matches("- ").trim().to_owned())
        .collect()
}

#[test]
fn the_error_codes_are_exactly_those_of_the_service() {
    let document = contract();
    let documented = error_codes(&lines(&document));
    let served: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|code| code.as_str().to_owned())
        .collect();
    assert_eq!(
        documented, served,
        "the Error code enum of contracts/openapi.yaml differs from ErrorCode::ALL"
    );
}

#[test]
fn every_status_of_an_error_code_is_documented_and_no_other() {
    let document = contract();
    let operations = operations(&lines(&document));
    let documented: BTreeSet<String> = operations.values().flatten().cloned().collect();
    let mut errors: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|code| code.status().as_u16().to_string())
        .collect();
    // INVALID_REQUEST for a body over the limit.
    errors.insert("413".to_owned());
    for status in &errors {
        assert!(
            documented.contains(status),
            "status {status} of an error code is not documented"
        );
    }
    for status in &documented {
        assert!(
            status.starts_with('2') || errors.contains(status),
            "status {status} is documented but no error code is answered with it"
        );
    }
}

#[test]
fn every_route_of_the_router_is_documented() {
    let document = contract();
    let operations = operations(&lines(&document));
    for (method, path) in SERVED {
        assert!(
            operations.contains_key(&(method.to_owned(), path.to_owned())),
            "{method} {path} is served but not in contracts/openapi.yaml"
        );
    }
}

/// `path` with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{transcode_id}", &uuid::Uuid::new_v4().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_is_served_and_no_other_method() {
    let document = contract();
    let operations = operations(&lines(&document));
    let service = Service::start(&[]);
    let client = reqwest::Client::new();
    let paths: BTreeSet<&String> = operations.keys().map(|(_, path)| path).collect();
    for path in paths {
        let url = format!("{}{}", service.base_url(), concrete(path));
        let documented: BTreeSet<&str> = operations
            .keys()
            .filter(|(_, documented)| documented == path)
            .map(|(method, _)| method.as_str())
            .collect();
        // Documented methods first, so that one that is not served is reported as such.
        let mut methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];
        methods.sort_by_key(|method| !documented.contains(method));
        for method in methods {
            let response = client
                .request(method.parse().unwrap(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let allow = response
                .headers()
                .get("allow")
                .map(|value| value.to_str().unwrap().to_owned());
            let body = response.bytes().await.unwrap();
            let error = serde_json::from_slice::<Value>(&body).ok();
            let code = error
                .as_ref()
                .and_then(|error| error["error"]["code"].as_str().map(str::to_owned));
            let message = error
                .as_ref()
                .and_then(|error| error["error"]["message"].as_str().map(str::to_owned));
            if documented.contains(method) {
                assert!(
                    status != 405 && message.as_deref() != Some("no such route"),
                    "{method} {path} is documented but not served: {status} {code:?}"
                );
            } else {
                assert_eq!(
                    (status, code.as_deref()),
                    (405, Some("METHOD_NOT_ALLOWED")),
                    "{method} {path} is served but not documented"
                );
                let allowed: BTreeSet<&str> = allow
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|method| *method != "HEAD")
                    .collect();
                assert_eq!(
                    allowed, documented,
                    "the Allow header of {path} differs from its documented methods"
                );
            }
        }
    }
}
