//! Video jobs: their states and which renderer reports may move them.

/// Where a video job stands (HeyGen's `VideoStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl VideoStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "processing" => Some(Self::Processing),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// What a renderer's report does to a video in `current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Apply it (and, if it is final, emit the event).
    Apply,
    /// Nothing changes and nothing is emitted: a repeat.
    Unchanged,
    /// It contradicts a final state.
    Conflict,
}

/// Completed and failed are final: repeating the same final report changes nothing;
/// any other report after a final one conflicts. `processing` may repeat.
pub fn transition(current: VideoStatus, reported: VideoStatus) -> Transition {
    match (current, reported) {
        (_, VideoStatus::Pending) => Transition::Conflict,
        (current, reported) if current == reported => Transition::Unchanged,
        (current, _) if current.is_final() => Transition::Conflict,
        _ => Transition::Apply,
    }
}

#[cfg(test)]
mod tests {
    use super::VideoStatus::*;
    use super::*;

    #[test]
    fn reports_move_a_video_forward_only() {
        let cases = [
            (Pending, Processing, Transition::Apply),
            (Pending, Completed, Transition::Apply),
            (Pending, Failed, Transition::Apply),
            (Processing, Processing, Transition::Unchanged),
            (Processing, Completed, Transition::Apply),
            (Processing, Failed, Transition::Apply),
            (Completed, Completed, Transition::Unchanged),
            (Failed, Failed, Transition::Unchanged),
            (Completed, Failed, Transition::Conflict),
            (Failed, Completed, Transition::Conflict),
            (Completed, Processing, Transition::Conflict),
            (Processing, Pending, Transition::Conflict),
        ];
        for (current, reported, expected) in cases {
            assert_eq!(transition(current, reported), expected, "{current:?} + {reported:?}");
        }
    }
}
