//! A generation request, checked and normalized: the provider and model, the size as pixels,
//! every option that changes the image. Two requests that normalize alike are one image
//! (one cache entry), whatever their key order or whether they spelled a default out.

use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::platform::error::AppError;
use crate::platform::hash::cache_key;

/// `POST /api/ai/img` (and `GET /api/ai/img?prompt=…`, which takes the same fields).
#[derive(Debug, Clone, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"prompt": "a lighthouse at dawn, watercolor", "image_size": "landscape_16_9", "seed": 7}))]
pub struct ImageRequest {
    /// What to draw (1 to 4,000 characters).
    #[schema(min_length = 1, max_length = 4000)]
    #[param(min_length = 1, max_length = 4000)]
    pub prompt: String,
    /// `fal-ai/<model>` (e.g. `fal-ai/flux/schnell`, the default) or `openai/<model>`
    /// (e.g. `openai/gpt-image-1`).
    #[serde(default)]
    pub model: Option<String>,
    /// `square_hd` (1024²), `square` (512²), `portrait_4_3` (768×1024), `portrait_16_9`
    /// (576×1024), `landscape_4_3` (1024×768, fal's default) or `landscape_16_9` (1024×576);
    /// or give `width` and `height`. OpenAI models default to 1024×1024.
    #[serde(default)]
    pub image_size: Option<String>,
    /// 64 to 2048, with `height`.
    #[serde(default)]
    #[schema(minimum = 64, maximum = 2048)]
    #[param(minimum = 64, maximum = 2048)]
    pub width: Option<u32>,
    /// 64 to 2048, with `width`.
    #[serde(default)]
    #[schema(minimum = 64, maximum = 2048)]
    #[param(minimum = 64, maximum = 2048)]
    pub height: Option<u32>,
    /// The same seed, prompt and options give the same image (fal models).
    #[serde(default)]
    pub seed: Option<u64>,
    /// 1 to 50 (fal models).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 50)]
    #[param(minimum = 1, maximum = 50)]
    pub num_inference_steps: Option<u32>,
    /// 1 to 20 (fal models).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 20)]
    #[param(minimum = 1, maximum = 20)]
    pub guidance_scale: Option<f64>,
    /// `jpeg`, `png` or `webp`.
    #[serde(default)]
    pub output_format: Option<String>,
}

/// Who makes the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Fal,
    OpenAi,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Fal => "fal",
            Provider::OpenAi => "openai",
        }
    }
}

/// A request ready for a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub provider: Provider,
    /// The model id the provider knows (`fal-ai/flux/schnell`, `gpt-image-1`).
    pub model: String,
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub seed: Option<u64>,
    pub steps: Option<u32>,
    pub guidance: Option<f64>,
    pub format: Option<String>,
}

const NAMED_SIZES: [(&str, u32, u32); 6] = [
    ("square_hd", 1024, 1024),
    ("square", 512, 512),
    ("portrait_4_3", 768, 1024),
    ("portrait_16_9", 576, 1024),
    ("landscape_4_3", 1024, 768),
    ("landscape_16_9", 1024, 576),
];

fn bad(message: String, param: &str) -> AppError {
    AppError::bad_request(message).with_param(param)
}

impl ImageRequest {
    /// The normalized request; `default_model` when it names none.
    pub fn normalize(self, default_model: &str) -> Result<Params, AppError> {
        let prompt = self.prompt.trim().to_owned();
        if prompt.is_empty() || prompt.chars().count() > 4000 {
            return Err(bad("prompt must be 1 to 4000 characters".into(), "prompt"));
        }
        let named = self.model.unwrap_or_else(|| default_model.to_owned());
        let (provider, model) = if named.starts_with("fal-ai/") {
            (Provider::Fal, named.clone())
        } else if let Some(model) = named.strip_prefix("openai/") {
            (Provider::OpenAi, model.to_owned())
        } else {
            return Err(bad(
                format!("model {named:?} is not fal-ai/<model> or openai/<model>"),
                "model",
            ));
        };
        if model.trim_start_matches("fal-ai/").is_empty() || model.contains(char::is_whitespace) {
            return Err(bad(format!("model {named:?} names no model"), "model"));
        }
        let (width, height) = match (self.image_size.as_deref(), self.width, self.height) {
            (Some(name), None, None) => NAMED_SIZES
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|&(_, w, h)| (w, h))
                .ok_or_else(|| {
                    let names: Vec<&str> = NAMED_SIZES.iter().map(|(n, _, _)| *n).collect();
                    bad(
                        format!("image_size {name:?} is not one of {}", names.join(", ")),
                        "image_size",
                    )
                })?,
            (None, Some(w), Some(h)) => {
                if !(64..=2048).contains(&w) || !(64..=2048).contains(&h) {
                    return Err(bad("width and height must be 64 to 2048".into(), "width"));
                }
                (w, h)
            }
            (None, None, None) => match provider {
                Provider::Fal => (1024, 768),
                Provider::OpenAi => (1024, 1024),
            },
            _ => {
                return Err(bad(
                    "give image_size, or width and height together".into(),
                    "image_size",
                ));
            }
        };
        if self
            .num_inference_steps
            .is_some_and(|s| !(1..=50).contains(&s))
        {
            return Err(bad(
                "num_inference_steps must be 1 to 50".into(),
                "num_inference_steps",
            ));
        }
        if self
            .guidance_scale
            .is_some_and(|g| !(1.0..=20.0).contains(&g))
        {
            return Err(bad(
                "guidance_scale must be 1 to 20".into(),
                "guidance_scale",
            ));
        }
        if let Some(format) = &self.output_format
            && !matches!(format.as_str(), "jpeg" | "png" | "webp")
        {
            return Err(bad(
                format!("output_format {format:?} is not jpeg, png or webp"),
                "output_format",
            ));
        }
        // OpenAI's image API has none of these: refused rather than dropped.
        if provider == Provider::OpenAi {
            for (name, given) in [
                ("seed", self.seed.is_some()),
                ("num_inference_steps", self.num_inference_steps.is_some()),
                ("guidance_scale", self.guidance_scale.is_some()),
            ] {
                if given {
                    return Err(bad(
                        format!(
                            "openai image models take no {name}; remove it or use a fal-ai model"
                        ),
                        name,
                    ));
                }
            }
        }
        Ok(Params {
            provider,
            model,
            prompt,
            width,
            height,
            seed: self.seed,
            steps: self.num_inference_steps,
            guidance: self.guidance_scale,
            format: self.output_format,
        })
    }
}

impl Params {
    /// The cache key of the image these parameters make.
    pub fn key(&self) -> String {
        cache_key(
            &json!({
                "v": 1,
                "provider": self.provider.name(),
                "model": self.model,
                "prompt": self.prompt,
                "size": [self.width, self.height],
                "seed": self.seed,
                "steps": self.steps,
                "guidance": self.guidance,
                "format": self.format,
            })
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: serde_json::Value) -> ImageRequest {
        serde_json::from_value(value).expect("request")
    }

    #[test]
    fn a_spelled_out_default_is_the_same_image() {
        let plain = request(json!({"prompt": " a cat "}))
            .normalize("fal-ai/flux/schnell")
            .expect("ok");
        let spelled = request(json!({"image_size": "landscape_4_3", "model": "fal-ai/flux/schnell", "prompt": "a cat"}))
            .normalize("openai/gpt-image-1")
            .expect("ok");
        let pixels = request(json!({"prompt": "a cat", "width": 1024, "height": 768}))
            .normalize("fal-ai/flux/schnell")
            .expect("ok");
        assert_eq!(plain.key(), spelled.key());
        assert_eq!(plain.key(), pixels.key());
        let other = request(json!({"prompt": "a cat", "seed": 1}))
            .normalize("fal-ai/flux/schnell")
            .expect("ok");
        assert_ne!(plain.key(), other.key());
    }

    #[test]
    fn what_a_provider_cannot_do_is_refused_by_name() {
        for (body, param) in [
            (json!({"prompt": ""}), "prompt"),
            (json!({"prompt": "x", "model": "midjourney"}), "model"),
            (json!({"prompt": "x", "image_size": "huge"}), "image_size"),
            (json!({"prompt": "x", "width": 512}), "image_size"),
            (
                json!({"prompt": "x", "width": 4096, "height": 512}),
                "width",
            ),
            (
                json!({"prompt": "x", "num_inference_steps": 0}),
                "num_inference_steps",
            ),
            (
                json!({"prompt": "x", "guidance_scale": 30}),
                "guidance_scale",
            ),
            (
                json!({"prompt": "x", "output_format": "bmp"}),
                "output_format",
            ),
            (
                json!({"prompt": "x", "model": "openai/gpt-image-1", "seed": 3}),
                "seed",
            ),
        ] {
            let error = request(body.clone())
                .normalize("fal-ai/flux/schnell")
                .expect_err("refused");
            assert_eq!(error.param.as_deref(), Some(param), "{body}");
        }
    }
}
