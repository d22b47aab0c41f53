//! Choosing the encoder at run time, with the reason, without ever crashing on a machine that
//! lacks CUDA: the NVENC elements of GStreamer's nvcodec plugin register only when the CUDA and
//! NVIDIA driver libraries load, so their presence is the check (no CUDA call is made here).

use crate::settings::EncoderPreference;

/// An encoder the pipeline can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// NVIDIA NVENC through `nvh264enc`.
    Nvenc,
    /// x264, zero-latency, ultrafast.
    X264,
    /// libvpx VP8, realtime.
    Vp8,
}

/// NVENC H.264 element (nvcodec).
pub const NVENC_ELEMENT: &str = "nvh264enc";

impl Encoder {
    /// The GStreamer element.
    pub fn element(self) -> &'static str {
        match self {
            Self::Nvenc => NVENC_ELEMENT,
            Self::X264 => "x264enc",
            Self::Vp8 => "vp8enc",
        }
    }

    /// The RTP payloader for its output.
    pub fn payloader(self) -> &'static str {
        match self {
            Self::Nvenc | Self::X264 => "rtph264pay config-interval=-1 aggregate-mode=zero-latency",
            Self::Vp8 => "rtpvp8pay",
        }
    }

    /// What to use when this encoder fails at run time: NVENC falls back to the CPU (x264, or
    /// VP8 without it); the CPU encoders have nothing further.
    pub fn fallback(self, probe: &dyn Probe) -> Option<Self> {
        match self {
            Self::Nvenc if probe.has_element(Self::X264.element()) => Some(Self::X264),
            Self::Nvenc if probe.has_element(Self::Vp8.element()) => Some(Self::Vp8),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Nvenc => 0,
            Self::X264 => 1,
            Self::Vp8 => 2,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Nvenc,
            1 => Self::X264,
            _ => Self::Vp8,
        }
    }

    /// Sets the bitrate of a running encoder element of this kind.
    pub fn set_bitrate(self, element: &gstreamer::Element, kbps: u32) {
        use gstreamer::prelude::ObjectExt as _;
        match self {
            Self::Nvenc | Self::X264 => element.set_property("bitrate", kbps),
            Self::Vp8 => element.set_property(
                "target-bitrate",
                i32::try_from(u64::from(kbps) * 1000).unwrap_or(i32::MAX),
            ),
        }
    }

    /// The encoder as a pipeline fragment (element named `encoder`), tuned for latency.
    pub fn description(self, bitrate_kbps: u32, fps: u32) -> String {
        let gop = fps.saturating_mul(2).max(1);
        match self {
            Self::Nvenc => format!(
                "nvh264enc name=encoder preset=low-latency-hq zerolatency=true rc-mode=cbr bitrate={bitrate_kbps} gop-size={gop} ! video/x-h264,profile=constrained-baseline"
            ),
            Self::X264 => format!(
                "x264enc name=encoder tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} key-int-max={gop} ! video/x-h264,profile=constrained-baseline"
            ),
            Self::Vp8 => format!(
                "vp8enc name=encoder deadline=1 cpu-used=8 end-usage=cbr target-bitrate={} keyframe-max-dist={gop}",
                u64::from(bitrate_kbps) * 1000
            ),
        }
    }
}

/// What is installed.
pub trait Probe {
    /// Whether the GStreamer element factory `name` exists.
    fn has_element(&self, name: &str) -> bool;
}

/// Asks GStreamer's registry (after `gstreamer::init`).
pub struct GstProbe;

impl Probe for GstProbe {
    fn has_element(&self, name: &str) -> bool {
        gstreamer::ElementFactory::find(name).is_some()
    }
}

/// Picks the encoder for `preference`; the string says why, for the log.
pub fn choose(
    preference: EncoderPreference,
    probe: &dyn Probe,
) -> Result<(Encoder, String), String> {
    let have = |e: Encoder| probe.has_element(e.element());
    let missing = |e: Encoder| format!("{} is not installed", e.element());
    match preference {
        EncoderPreference::Nvenc if have(Encoder::Nvenc) => {
            Ok((Encoder::Nvenc, "NVENC requested and available".into()))
        }
        EncoderPreference::Nvenc => Err(format!(
            "NVENC requested but {} (no NVIDIA GPU, driver or CUDA library)",
            missing(Encoder::Nvenc)
        )),
        EncoderPreference::X264 if have(Encoder::X264) => {
            Ok((Encoder::X264, "x264 requested".into()))
        }
        EncoderPreference::Vp8 if have(Encoder::Vp8) => Ok((Encoder::Vp8, "VP8 requested".into())),
        EncoderPreference::X264 => Err(missing(Encoder::X264)),
        EncoderPreference::Vp8 => Err(missing(Encoder::Vp8)),
        EncoderPreference::Auto => {
            if have(Encoder::Nvenc) {
                Ok((
                    Encoder::Nvenc,
                    "an NVIDIA GPU with NVENC is available".into(),
                ))
            } else if have(Encoder::X264) {
                Ok((
                    Encoder::X264,
                    format!(
                        "CPU fallback: {} (no NVIDIA GPU, driver or CUDA library)",
                        missing(Encoder::Nvenc)
                    ),
                ))
            } else if have(Encoder::Vp8) {
                Ok((
                    Encoder::Vp8,
                    format!(
                        "CPU fallback: {} and {}",
                        missing(Encoder::Nvenc),
                        missing(Encoder::X264)
                    ),
                ))
            } else {
                Err(
                    "no usable encoder: install gstreamer1.0-plugins-ugly (x264) or -good (vp8)"
                        .into(),
                )
            }
        }
    }
}

/// The encoder in use, shared by all viewers; a runtime fallback changes it for later viewers too.
#[derive(Debug)]
pub struct CurrentEncoder(std::sync::atomic::AtomicU8);

impl CurrentEncoder {
    /// Starts with `encoder`.
    pub fn new(encoder: Encoder) -> Self {
        Self(std::sync::atomic::AtomicU8::new(encoder.code()))
    }

    /// The encoder now.
    pub fn get(&self) -> Encoder {
        Encoder::from_code(self.0.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Switches to `encoder`.
    pub fn set(&self, encoder: Encoder) {
        self.0
            .store(encoder.code(), std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(&'static [&'static str]);

    impl Probe for Fake {
        fn has_element(&self, name: &str) -> bool {
            self.0.contains(&name)
        }
    }

    #[test]
    fn auto_prefers_nvenc_then_x264_then_vp8() {
        let all = Fake(&["nvh264enc", "x264enc", "vp8enc"]);
        assert_eq!(
            choose(EncoderPreference::Auto, &all).map(|c| c.0),
            Ok(Encoder::Nvenc)
        );
        let cpu = Fake(&["x264enc", "vp8enc"]);
        let (enc, why) = choose(EncoderPreference::Auto, &cpu).expect("x264");
        assert_eq!(enc, Encoder::X264);
        assert!(why.contains("nvh264enc is not installed"), "{why}");
        assert_eq!(
            choose(EncoderPreference::Auto, &Fake(&["vp8enc"])).map(|c| c.0),
            Ok(Encoder::Vp8)
        );
        assert!(choose(EncoderPreference::Auto, &Fake(&[])).is_err());
        assert!(choose(EncoderPreference::Nvenc, &cpu).is_err());
        assert_eq!(
            choose(EncoderPreference::Vp8, &all).map(|c| c.0),
            Ok(Encoder::Vp8)
        );
    }

    #[test]
    fn nvenc_falls_back_to_the_cpu_and_the_cpu_to_nothing() {
        let all = Fake(&["nvh264enc", "x264enc", "vp8enc"]);
        assert_eq!(Encoder::Nvenc.fallback(&all), Some(Encoder::X264));
        assert_eq!(
            Encoder::Nvenc.fallback(&Fake(&["vp8enc"])),
            Some(Encoder::Vp8)
        );
        assert_eq!(Encoder::X264.fallback(&all), None);
        assert_eq!(Encoder::Vp8.fallback(&all), None);
        let current = CurrentEncoder::new(Encoder::Nvenc);
        current.set(Encoder::X264);
        assert_eq!(current.get(), Encoder::X264);
    }
}
