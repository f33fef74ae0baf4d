//! The query form of `GET /transcode`: flat `key=value` pairs turned into the same JSON
//! shape as a `POST` body, so that both forms share one parser and one set of rules.
//! Filters use their own names (`speed=1.25&eq_preset=voice`); `eq_bands` is a comma list
//! of `FREQ_HZ:GAIN_DB:Q`; `normalize` is `true`, `false` or a target in LUFS.

use serde_json::{Map, Value};

use crate::error::{ErrorCode, ServiceError};

/// Top-level request fields whose values are numbers.
const NUMERIC_FIELDS: [&str; 5] = [
    "sample_rate",
    "channels",
    "bitrate_kbps",
    "start_seconds",
    "duration_seconds",
];
/// Top-level request fields whose values are strings.
const TEXT_FIELDS: [&str; 2] = ["source_url", "output_format"];
/// Filter keys whose values are numbers.
const NUMERIC_FILTERS: [&str; 4] = ["speed", "pitch", "rate", "volume"];

/// Converts a query string into a request object.
pub fn to_json(query: &str) -> Result<Value, ServiceError> {
    let mut request = Map::new();
    let mut filters = Map::new();
    for (key, text) in url::form_urlencoded::parse(query.as_bytes()) {
        let (target, value) = match key.as_ref() {
            name if TEXT_FIELDS.contains(&name) => (&mut request, Value::String(text.into())),
            name if NUMERIC_FIELDS.contains(&name) => (&mut request, number_or_text(&text)),
            name if NUMERIC_FILTERS.contains(&name) => (&mut filters, number_or_text(&text)),
            "eq_preset" => (&mut filters, Value::String(text.into())),
            "eq_bands" => (&mut filters, eq_bands(&text)?),
            "normalize" => (&mut filters, normalize(&text)?),
            other => {
                return Err(ServiceError::new(
                    ErrorCode::InvalidRequest,
                    format!("unknown query parameter {other:?}"),
                ));
            }
        };
        if target.insert(key.to_string(), value).is_some() {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("query parameter {key:?} is given twice"),
            ));
        }
    }
    if !filters.is_empty() {
        request.insert("filters".into(), Value::Object(filters));
    }
    Ok(Value::Object(request))
}

/// A number when `text` is one; otherwise the text, which the typed parser then rejects
/// with a message naming the field.
fn number_or_text(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(number @ Value::Number(_)) => number,
        _ => Value::String(text.into()),
    }
}

/// `1000:6:1.0,80:-3:0.7` -> `[{"freq_hz":1000,"gain_db":6,"q":1.0}, ...]`.
fn eq_bands(text: &str) -> Result<Value, ServiceError> {
    if text.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    text.split(',')
        .map(|band| {
            let numbers: Vec<Value> = band.split(':').map(number_or_text).collect();
            match <[Value; 3]>::try_from(numbers) {
                Ok([freq_hz, gain_db, q]) => Ok(super::request::object([
                    ("freq_hz".into(), freq_hz),
                    ("gain_db".into(), gain_db),
                    ("q".into(), q),
                ])),
                Err(_) => Err(ServiceError::new(
                    ErrorCode::FilterInvalid,
                    format!("eq_bands: {band:?} is not FREQ_HZ:GAIN_DB:Q"),
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `true` (or empty) -> `{}`, `false` -> `null`, a number -> `{"target_lufs": n}`.
fn normalize(text: &str) -> Result<Value, ServiceError> {
    match text {
        "" | "true" => Ok(Value::Object(Map::new())),
        "false" => Ok(Value::Null),
        _ => match number_or_text(text) {
            number @ Value::Number(_) => {
                Ok(super::request::object([("target_lufs".into(), number)]))
            }
            _ => Err(ServiceError::new(
                ErrorCode::FilterInvalid,
                format!("normalize = {text:?} must be true, false or a target in LUFS"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flat_filters_become_a_filters_object() {
        let value = to_json(
            "source_url=http%3A%2F%2Fa%2Fb.mp3&output_format=pcm&sample_rate=44100\
             &speed=1.25&eq_preset=voice&eq_bands=1000:6:1,80:-3:0.7&normalize=-16",
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "source_url": "http://a/b.mp3",
                "output_format": "pcm",
                "sample_rate": 44100,
                "filters": {
                    "speed": 1.25,
                    "eq_preset": "voice",
                    "eq_bands": [
                        {"freq_hz": 1000, "gain_db": 6, "q": 1},
                        {"freq_hz": 80, "gain_db": -3, "q": 0.7}
                    ],
                    "normalize": {"target_lufs": -16}
                }
            })
        );
    }

    #[test]
    fn unknown_and_repeated_keys_are_invalid_requests() {
        for query in ["source_url=a&colour=red", "source_url=a&source_url=b"] {
            assert_eq!(to_json(query).unwrap_err().code, ErrorCode::InvalidRequest);
        }
        assert_eq!(
            to_json("eq_bands=1000:6").unwrap_err().code,
            ErrorCode::FilterInvalid
        );
    }
}
