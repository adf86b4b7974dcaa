//! The event catalog: which event types exist, in the contract's order, with descriptions.

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeInfo {
    pub name: String,
    pub description: String,
}

/// HeyGen's catalog as of 2026-07 (contract section 3), in its order.
const BUILTIN: [(&str, &str); 30] = [
    ("avatar_video.success", "An avatar video finished rendering successfully."),
    ("avatar_video.fail", "An avatar video failed to render."),
    ("avatar_video_gif.success", "A GIF preview of an avatar video was generated."),
    ("avatar_video_gif.fail", "A GIF preview of an avatar video could not be generated."),
    ("video_translate.success", "A video translation completed successfully."),
    ("video_translate.fail", "A video translation failed."),
    (
        "video_translate.preflight.validation_failed",
        "A video translation was rejected before it started because its input failed validation.",
    ),
    (
        "video_translate.preflight.download_failed",
        "A video translation was rejected before it started because its source could not be downloaded.",
    ),
    ("personalized_video", "A personalized video for one contact of a project was generated."),
    ("instant_avatar.success", "An instant avatar was created successfully."),
    ("instant_avatar.fail", "An instant avatar could not be created."),
    ("photo_avatar_generation.success", "Photo avatar images were generated successfully."),
    ("photo_avatar_generation.fail", "Photo avatar image generation failed."),
    ("photo_avatar_train.success", "A photo avatar group finished training."),
    ("photo_avatar_train.fail", "A photo avatar group failed to train."),
    ("photo_avatar_add_motion.success", "Motion was added to a photo avatar."),
    ("photo_avatar_add_motion.fail", "Motion could not be added to a photo avatar."),
    ("proofread_creation.success", "A proofread for a video translation was created."),
    ("proofread_creation.fail", "A proofread for a video translation could not be created."),
    ("live_avatar.success", "A live avatar session or asset completed successfully."),
    ("live_avatar.fail", "A live avatar session or asset failed."),
    ("avatar_video_caption.success", "Captions for an avatar video were generated."),
    ("avatar_video_caption.fail", "Captions for an avatar video could not be generated."),
    ("video_agent.success", "A video agent finished producing a video."),
    ("video_agent.fail", "A video agent failed to produce a video."),
    ("hyperframes_video.success", "A HyperFrames video finished rendering."),
    ("hyperframes_video.fail", "A HyperFrames video failed to render."),
    ("ai_clipping.success", "AI clipping produced clips from a source video."),
    ("ai_clipping.fail", "AI clipping failed for a source video."),
    ("batch.finished", "Every job of a batch has reached a final state."),
];

/// The built-in catalog plus the operator's additions (`--event-type`), fixed at startup.
#[derive(Debug, Clone)]
pub struct EventCatalog {
    entries: Vec<EventTypeInfo>,
}

/// An operator-supplied event type that is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event type {0:?} is not valid: use 1-100 characters of a-z, 0-9, '.', '_' and '-', starting with a letter"
)]
pub struct InvalidEventTypeName(pub String);

impl EventCatalog {
    /// The contract's 30 types followed by `extra`; an extra that repeats a built-in
    /// name replaces its description instead of adding a second entry.
    pub fn with_extra_types(
        extra: impl IntoIterator<Item = EventTypeInfo>,
    ) -> Result<Self, InvalidEventTypeName> {
        let mut catalog = Self::builtin();
        for info in extra {
            if !is_valid_name(&info.name) {
                return Err(InvalidEventTypeName(info.name));
            }
            match catalog.entries.iter_mut().find(|e| e.name == info.name) {
                Some(existing) => existing.description = info.description,
                None => catalog.entries.push(info),
            }
        }
        Ok(catalog)
    }

    pub fn builtin() -> Self {
        let entries = BUILTIN
            .iter()
            .map(|(name, description)| EventTypeInfo {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
            })
            .collect();
        Self { entries }
    }

    /// hookd's own event types, which the operator's operational endpoints subscribe
    /// to ([`crate::operational`]).
    pub fn operational() -> Self {
        let entries = crate::OperationalEventType::ALL
            .into_iter()
            .map(|kind| EventTypeInfo {
                name: kind.as_str().to_owned(),
                description: kind.description().to_owned(),
            })
            .collect();
        Self { entries }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name)
    }

    pub fn entries(&self) -> &[EventTypeInfo] {
        &self.entries
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 100
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_contracts_30_types_in_order() {
        let catalog = EventCatalog::builtin();
        assert_eq!(catalog.entries().len(), 30);
        assert_eq!(catalog.entries()[0].name, "avatar_video.success");
        assert_eq!(catalog.entries()[29].name, "batch.finished");
        assert!(catalog.entries().iter().all(|e| !e.description.is_empty()));
    }

    #[test]
    fn operator_types_are_appended_and_validated() {
        let extra = EventTypeInfo { name: "render.queued".into(), description: "Queued.".into() };
        let catalog = EventCatalog::with_extra_types([extra]).expect("valid");
        assert!(catalog.contains("render.queued"));
        assert_eq!(catalog.entries().len(), 31);
        let bad = EventTypeInfo { name: "Bad Name".into(), description: String::new() };
        assert!(EventCatalog::with_extra_types([bad]).is_err());
    }
}
