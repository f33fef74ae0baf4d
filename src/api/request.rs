//! Request bodies and query strings of `/transcode`, parsed and validated into a
//! [`TranscodeSpec`] before anything touches the network. A malformed or out-of-range
//! field is INVALID_REQUEST; anything wrong inside `filters` is FILTER_INVALID.

use dsp::Filters;
use dsp::eq::{EqBand, EqPreset};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::encode::{OutputFormat, OutputSpec};
use crate::error::{ErrorCode, ServiceError};
use crate::pipeline::TranscodeSpec;

/// A validated transcode request.
#[derive(Debug, Clone)]
pub struct TranscodeRequest {
    /// Where the audio comes from (checked by the source guard, not here).
    pub source_url: String,
    /// What to make of it.
    pub spec: TranscodeSpec,
}

/// The JSON body of `POST /transcode` once `filters` is taken out (parsed on its own,
/// so that its problems are FILTER_INVALID).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscodeBody {
    source_url: String,
    #[serde(default)]
    output_format: Option<String>,
    #[serde(default, deserialize_with = "whole_number")]
    sample_rate: Option<u32>,
    #[serde(default, deserialize_with = "whole_number")]
    channels: Option<usize>,
    #[serde(default, deserialize_with = "whole_number")]
    bitrate_kbps: Option<u32>,
    #[serde(default)]
    start_seconds: Option<f64>,
    #[serde(default)]
    duration_seconds: Option<f64>,
}

/// The `filters` object; every key optional, so that it also serves as a live patch.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object of filters")]
pub struct FiltersPatch {
    speed: Option<f64>,
    pitch: Option<f64>,
    rate: Option<f64>,
    volume: Option<f64>,
    eq_preset: Option<String>,
    eq_bands: Option<Vec<EqBandBody>>,
    #[serde(default, deserialize_with = "present")]
    normalize: Option<Option<NormalizeBody>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a band {freq_hz, gain_db, q}")]
struct EqBandBody {
    freq_hz: f64,
    gain_db: f64,
    q: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "null or {target_lufs}")]
struct NormalizeBody {
    #[serde(default)]
    target_lufs: Option<f64>,
}

/// Accepted `volume` values, checked before the value becomes an `f32`.
const VOLUME_RANGE: std::ops::RangeInclusive<f64> =
    dsp::gain::MIN_VOLUME as f64..=dsp::gain::MAX_VOLUME as f64;

fn filter_invalid(error: dsp::ConfigError) -> ServiceError {
    ServiceError::new(ErrorCode::FilterInvalid, error.to_string())
}

/// An optional whole number that may be written with a fraction of zero (`44100.0`), as
/// JSON Schema's `integer` allows.
fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(number) = Option::<f64>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = (number.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&number))
        .then(|| T::try_from(number as u64).ok())
        .flatten();
    whole
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// Tells a present `null` (`Some(None)`) from an absent key (`None`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<NormalizeBody>>, D::Error> {
    Option::<NormalizeBody>::deserialize(deserializer).map(Some)
}

impl FiltersPatch {
    /// Parses a `filters` value; any problem is FILTER_INVALID.
    pub fn parse(value: Value) -> Result<Self, ServiceError> {
        parse_as(value, ErrorCode::FilterInvalid, "filters")
    }

    /// `base` with the keys given here changed, validated.
    pub fn apply_to(self, base: &Filters) -> Result<Filters, ServiceError> {
        let mut filters = base.clone();
        filters.speed = self.speed.unwrap_or(filters.speed);
        filters.pitch = self.pitch.unwrap_or(filters.pitch);
        filters.rate = self.rate.unwrap_or(filters.rate);
        if let Some(volume) = self.volume {
            // Checked as given: rounding to f32 first would let 2.0000000001 pass.
            if !VOLUME_RANGE.contains(&volume) {
                return Err(filter_invalid(dsp::ConfigError::OutOfRange {
                    name: "volume",
                    value: volume,
                    min: *VOLUME_RANGE.start(),
                    max: *VOLUME_RANGE.end(),
                }));
            }
            filters.volume = volume as f32;
        }
        if let Some(name) = self.eq_preset {
            filters.eq_preset = name.parse::<EqPreset>().map_err(|err| {
                ServiceError::new(
                    ErrorCode::FilterInvalid,
                    format!("eq_preset: {err} (use flat, bass_boost, voice or treble)"),
                )
            })?;
        }
        if let Some(bands) = self.eq_bands {
            filters.eq_bands = bands
                .into_iter()
                .map(|band| EqBand {
                    freq_hz: band.freq_hz,
                    gain_db: band.gain_db,
                    q: band.q,
                })
                .collect();
        }
        if let Some(normalize) = self.normalize {
            filters.normalize_lufs =
                normalize.map(|body| body.target_lufs.unwrap_or(dsp::DEFAULT_TARGET_LUFS));
        }
        filters.validate().map_err(filter_invalid)?;
        Ok(filters)
    }
}

impl TranscodeRequest {
    /// Parses and validates a JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self, ServiceError> {
        let value: Value = serde_json::from_slice(body).map_err(|err| {
            ServiceError::new(ErrorCode::InvalidRequest, format!("malformed JSON: {err}"))
        })?;
        Self::from_value(value)
    }

    /// Parses and validates a query string of `GET /transcode` (flat filter names).
    pub fn from_query(query: &str) -> Result<Self, ServiceError> {
        Self::from_value(super::query::to_json(query)?)
    }

    fn from_value(mut value: Value) -> Result<Self, ServiceError> {
        let filters = match value.as_object_mut() {
            Some(object) => object.remove("filters"),
            None => {
                return Err(ServiceError::new(
                    ErrorCode::InvalidRequest,
                    "the body must be a JSON object",
                ));
            }
        };
        let body: TranscodeBody = parse_as(value, ErrorCode::InvalidRequest, "")?;
        let filters = match filters {
            None | Some(Value::Null) => Filters::default(),
            Some(value) => FiltersPatch::parse(value)?.apply_to(&Filters::default())?,
        };
        let spec = TranscodeSpec {
            output: output_spec(&body)?,
            filters,
            start_secs: body.start_seconds.unwrap_or(0.0),
            duration_secs: body.duration_seconds,
        };
        spec.check_times()
            .map_err(|error| ServiceError::from(&error))?;
        Ok(Self {
            source_url: body.source_url,
            spec,
        })
    }
}

/// Deserialises `value`, found at JSON path `at` (`""` for the body itself), as `T`; a
/// mismatch is `code` with serde's explanation, prefixed by the path of the field at
/// fault (e.g. `filters.eq_bands[2].q: invalid type: ...`).
fn parse_as<T: DeserializeOwned>(
    value: Value,
    code: ErrorCode,
    at: &str,
) -> Result<T, ServiceError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = match (at, err.path().to_string()) {
            (at, inner) if inner == "." => at.to_owned(),
            ("", inner) => inner,
            (at, inner) => format!("{at}.{inner}"),
        };
        let message = match path.as_str() {
            "" => err.inner().to_string(),
            path => format!("{path}: {}", err.inner()),
        };
        ServiceError::new(code, message)
    })
}

fn output_spec(body: &TranscodeBody) -> Result<OutputSpec, ServiceError> {
    let defaults = OutputSpec::default();
    let format = match &body.output_format {
        Some(name) => name.parse::<OutputFormat>().map_err(invalid)?,
        None => defaults.format,
    };
    let spec = OutputSpec {
        format,
        sample_rate_hz: body.sample_rate.unwrap_or(defaults.sample_rate_hz),
        channels: body.channels.unwrap_or(defaults.channels),
        bitrate_kbps: body.bitrate_kbps.unwrap_or(defaults.bitrate_kbps),
    };
    spec.validate().map_err(invalid)?;
    Ok(spec)
}

fn invalid(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(ErrorCode::InvalidRequest, error.to_string())
}

/// Builds a JSON object from `(key, value)` pairs (used by the query parser).
pub(super) fn object(pairs: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Object(pairs.into_iter().collect::<Map<String, Value>>())
}
