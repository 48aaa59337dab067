//! H.264 encoding of rendered frames (openh264, constrained baseline, camera real-time mode,
//! lowest complexity).
//!
//! Frames are encoded only when the view changes, so there is no fixed tick: every call
//! produces one access unit. The colour conversion is BT.601 limited range and the stream says
//! so in its VUI, so the browser converts back with the same matrix. A new target bitrate takes
//! a new encoder (the session does that, with a keyframe, when loss reports move it by > 20 %).

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, Level, Profile, QpRange,
    RateControlMode, SpsPpsStrategy, UsageType, VuiConfig,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};

/// Lowest bitrate the adaptation goes down to.
pub const MIN_BITRATE: u32 = 300_000;
/// Highest bitrate the adaptation goes up to.
pub const MAX_BITRATE: u32 = 20_000_000;

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The frame's size differs from the encoder's or is odd.
    #[error("frame is {got_width}x{got_height}, encoder is {width}x{height} (even sizes only)")]
    Size {
        /// Encoder width.
        width: u32,
        /// Encoder height.
        height: u32,
        /// Frame width.
        got_width: u32,
        /// Frame height.
        got_height: u32,
    },
    /// openh264 refused.
    #[error("openh264: {0}")]
    Codec(String),
    /// libvpx refused (the VP8 encoder, [`crate::vp8`]).
    #[error("libvpx: {0}")]
    Vpx(String),
}

/// One encoded access unit (Annex B byte stream: start codes + NAL units), or one VP8 frame
/// from [`crate::vp8::Vp8Encoder`].
pub struct Encoded {
    /// The bytes to packetize.
    pub data: Vec<u8>,
    /// Whether this is an IDR frame (decodable on its own); for VP8, a keyframe.
    pub keyframe: bool,
}

/// An H.264 encoder for one viewport size.
pub struct H264Encoder {
    encoder: Encoder,
    yuv: YUVBuffer,
    width: u32,
    height: u32,
    bitrate: u32,
}

impl H264Encoder {
    /// An encoder for `width`×`height` (both even) starting at `bitrate` bits per second.
    pub fn new(width: u32, height: u32, bitrate: u32) -> Result<H264Encoder, EncodeError> {
        if !width.is_multiple_of(2) || !height.is_multiple_of(2) || width == 0 || height == 0 {
            return Err(EncodeError::Size {
                width,
                height,
                got_width: width,
                got_height: height,
            });
        }
        let bitrate = bitrate.clamp(MIN_BITRATE, MAX_BITRATE);
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .level(level_for(width, height))
            .rate_control_mode(RateControlMode::Quality)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(60.0))
            .skip_frames(false)
            // Low: about a quarter less encoding time than Medium on 1518×832 OCT frames
            // (6 against 8 ms p50 in the demo case; 7.6 against 9.7 ms on noisier synthetic
            // B-scans) for the same bytes and 0.3 dB less luma PSNR. Encoding is most of the
            // time from input to frame, and the lossless settle shows the exact frame anyway.
            .complexity(Complexity::Low)
            .qp(QpRange::new(8, 32))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .scene_change_detect(false)
            .background_detection(false)
            // One slice, so more threads would not help; the 2 cores are Chromium's too.
            .num_threads(1)
            .vui(VuiConfig::bt601());
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|err| EncodeError::Codec(err.to_string()))?;
        Ok(H264Encoder {
            encoder,
            yuv: YUVBuffer::new(width as usize, height as usize),
            width,
            height,
            bitrate,
        })
    }

    /// Width and height the encoder takes.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The current target bitrate.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Encodes an RGB8 frame of the encoder's size; `keyframe` forces an IDR frame.
    pub fn encode(
        &mut self,
        width: u32,
        height: u32,
        rgb: &[u8],
        keyframe: bool,
    ) -> Result<Encoded, EncodeError> {
        to_yuv(&mut self.yuv, (self.width, self.height), width, height, rgb)?;
        if keyframe {
            self.encoder.force_intra_frame();
        }
        let stream = self
            .encoder
            .encode(&self.yuv)
            .map_err(|err| EncodeError::Codec(err.to_string()))?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        Ok(Encoded {
            data: stream.to_vec(),
            keyframe,
        })
    }
}

/// The video codec of a session, chosen from what the browser's offer can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// H.264 constrained baseline (openh264): the default.
    H264,
    /// VP8 (libvpx): the fallback for browsers that offer no H.264.
    Vp8,
}

impl Codec {
    /// The RTP MIME type (`video/H264`, `video/VP8`).
    pub fn mime_type(self) -> &'static str {
        match self {
            Codec::H264 => "video/H264",
            Codec::Vp8 => "video/VP8",
        }
    }
}

/// A session's encoder, whichever codec was negotiated.
pub enum VideoEncoder {
    /// openh264 (boxed: its state is large and the enum moves with the pipeline).
    H264(Box<H264Encoder>),
    /// libvpx.
    Vp8(crate::vp8::Vp8Encoder),
}

impl VideoEncoder {
    /// An encoder of `codec` for `width`×`height` (both even) at `bitrate` bits per second.
    pub fn new(codec: Codec, width: u32, height: u32, bitrate: u32) -> Result<Self, EncodeError> {
        Ok(match codec {
            Codec::H264 => VideoEncoder::H264(Box::new(H264Encoder::new(width, height, bitrate)?)),
            Codec::Vp8 => VideoEncoder::Vp8(crate::vp8::Vp8Encoder::new(width, height, bitrate)?),
        })
    }

    /// Width and height the encoder takes.
    pub fn size(&self) -> (u32, u32) {
        match self {
            VideoEncoder::H264(e) => e.size(),
            VideoEncoder::Vp8(e) => e.size(),
        }
    }

    /// The current target bitrate.
    pub fn bitrate(&self) -> u32 {
        match self {
            VideoEncoder::H264(e) => e.bitrate(),
            VideoEncoder::Vp8(e) => e.bitrate(),
        }
    }

    /// Encodes an RGB8 frame of the encoder's size; `keyframe` forces a keyframe.
    pub fn encode(
        &mut self,
        width: u32,
        height: u32,
        rgb: &[u8],
        keyframe: bool,
    ) -> Result<Encoded, EncodeError> {
        match self {
            VideoEncoder::H264(e) => e.encode(width, height, rgb, keyframe),
            VideoEncoder::Vp8(e) => e.encode(width, height, rgb, keyframe),
        }
    }
}

/// Converts an RGB8 frame into `yuv` (BT.601 limited range, shared by both codecs) after
/// checking it has the encoder's `size` and `width × height × 3` bytes.
pub(crate) fn to_yuv(
    yuv: &mut YUVBuffer,
    size: (u32, u32),
    width: u32,
    height: u32,
    rgb: &[u8],
) -> Result<(), EncodeError> {
    if (width, height) != size || rgb.len() != width as usize * height as usize * 3 {
        return Err(EncodeError::Size {
            width: size.0,
            height: size.1,
            got_width: width,
            got_height: height,
        });
    }
    yuv.read_rgb8(RgbSliceU8::new(rgb, (width as usize, height as usize)));
    Ok(())
}

/// The lowest H.264 level whose frame size fits `width`×`height` (in 16×16 macroblocks).
fn level_for(width: u32, height: u32) -> Level {
    let macroblocks = width.div_ceil(16) * height.div_ceil(16);
    match macroblocks {
        0..=1_620 => Level::Level_3_0,
        1_621..=3_600 => Level::Level_3_1,
        3_601..=5_120 => Level::Level_3_2,
        5_121..=8_192 => Level::Level_4_0,
        8_193..=8_704 => Level::Level_4_2,
        _ => Level::Level_5_1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32, shift: u32) -> Vec<u8> {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                rgb.extend_from_slice(&[
                    ((x + shift) % 256) as u8,
                    (y % 256) as u8,
                    ((x + y) % 256) as u8,
                ]);
            }
        }
        rgb
    }

    #[test]
    fn first_frame_is_a_keyframe_and_later_ones_are_not_unless_forced() {
        let mut encoder = H264Encoder::new(320, 240, 2_000_000).unwrap();
        let first = encoder
            .encode(320, 240, &gradient(320, 240, 0), false)
            .unwrap();
        assert!(first.keyframe);
        assert_eq!(&first.data[..4], &[0, 0, 0, 1], "Annex B start code");
        let second = encoder
            .encode(320, 240, &gradient(320, 240, 3), false)
            .unwrap();
        assert!(!second.keyframe);
        let forced = encoder
            .encode(320, 240, &gradient(320, 240, 6), true)
            .unwrap();
        assert!(forced.keyframe);
    }

    #[test]
    fn wrong_size_and_odd_size_are_refused() {
        assert!(H264Encoder::new(321, 240, 1_000_000).is_err());
        let mut encoder = H264Encoder::new(320, 240, 1_000_000).unwrap();
        assert!(matches!(
            encoder.encode(320, 200, &gradient(320, 200, 0), false),
            Err(EncodeError::Size { .. })
        ));
    }

    #[test]
    fn bitrates_are_clamped() {
        assert_eq!(
            H264Encoder::new(320, 240, 1).unwrap().bitrate(),
            MIN_BITRATE
        );
        assert_eq!(
            H264Encoder::new(320, 240, u32::MAX).unwrap().bitrate(),
            MAX_BITRATE
        );
    }

    #[test]
    fn levels_follow_frame_size() {
        assert!(matches!(level_for(640, 480), Level::Level_3_0));
        assert!(matches!(level_for(1920, 1080), Level::Level_4_0));
        assert!(matches!(level_for(3840, 2160), Level::Level_5_1));
    }
}
