//! VP8 encoding of rendered frames (libvpx through `env-libvpx-sys`), the fallback for a browser
//! whose offer has no H.264.
//!
//! Same contract as [`H264Encoder`](crate::encode::H264Encoder): frames are encoded only when
//! the view changes, so every call produces one frame; keyframes come first and when asked
//! (the session asks on PLI/FIR and on a viewport change); a new target bitrate takes a new
//! encoder. The colour conversion is the H.264 path's (openh264's BT.601 limited range), which
//! is what browsers assume for VP8 (its keyframes only say "YUV").
//!
//! libvpx settings, for interactive viewing of diagnostic images on cores shared by sessions:
//! - real-time deadline, one thread (two stalled at ~250 ms per frame on 2 cores), no lag;
//! - a *fixed* speed: `cpu-used` is given as a negative number ([`CPU_USED`]). In real-time mode
//!   libvpx reads a positive value as the share of the frame interval it may spend
//!   ((16 − n)/16) and adapts its speed to the frame rate it derives from the timestamps, which
//!   here follow a user's input, so the encode time would wander (after an idle pause it slows
//!   down to its slowest real-time speed);
//! - CBR at the target bitrate, with the quantizer kept in [`MIN_QUANTIZER`]..=[`MAX_QUANTIZER`]
//!   (of 63): still and slow views may go near-lossless, and a frame the bitrate cannot pay for
//!   (a keyframe, a scroll through speckled OCT slices) overshoots it rather than going below
//!   about the quality of the H.264 path's QP cap (32); the lossless settle sends the exact
//!   pixels once the view rests;
//! - no automatic keyframes (`VPX_KF_DISABLED`; forced with `VPX_EFLAG_FORCE_KF`), no dropped
//!   frames, no spatial resizing, no denoiser (it would smooth fine detail);
//! - error resilient (no probability state carried from frame to frame, so a lost packet
//!   damages less);
//! - timebase 1/90000 s (RTP's video clock), timestamps from a monotonic clock: the rate
//!   control derives the frame rate from them, so a frame after an idle pause gets the bits of
//!   the pause.
//!
//! Measured (1526×880, 30 frames/s, 2 cores, the test profile; `speed_at_1526x880`): a fundus
//! panned 4 px per frame encodes in ~5–6 ms per frame (keyframe ~13 ms) at 44–50 dB Y PSNR;
//! OCT slices with fresh speckle in every frame take ~20 ms per frame at the quantizer cap.

use std::ffi::{CStr, c_int, c_long, c_uint, c_ulong};
use std::ptr;
use std::time::Instant;

use openh264::formats::{YUVBuffer, YUVSource};
use vpx_sys::{
    VPX_CODEC_OK, VPX_DL_REALTIME, VPX_EFLAG_FORCE_KF, VPX_ENCODER_ABI_VERSION,
    VPX_ERROR_RESILIENT_DEFAULT, VPX_FRAME_IS_KEY, vp8e_enc_control_id, vpx_codec_control_,
    vpx_codec_ctx_t, vpx_codec_cx_pkt_kind, vpx_codec_destroy, vpx_codec_enc_cfg_t,
    vpx_codec_enc_config_default, vpx_codec_enc_init_ver, vpx_codec_encode, vpx_codec_err_t,
    vpx_codec_err_to_string, vpx_codec_error_detail, vpx_codec_get_cx_data, vpx_codec_iter_t,
    vpx_codec_vp8_cx, vpx_color_range, vpx_color_space, vpx_enc_pass, vpx_image_t, vpx_img_fmt,
    vpx_kf_mode, vpx_rational, vpx_rc_mode,
};

use crate::encode::{EncodeError, Encoded, MAX_BITRATE, MIN_BITRATE, to_yuv};

/// libvpx's `cpu-used`: negative is a fixed speed. −8 is the fastest that keeps quarter-pixel
/// motion search (dropped above 8); −4 takes 1.5–1.8× as long, −14 and −16 make panned frames
/// ~4× larger or 4–6 dB worse (see the module docs and the `speed_at_1526x880` test).
pub const CPU_USED: i32 = -8;
/// Lowest quantizer (of 63) the rate control may use.
pub const MIN_QUANTIZER: u32 = 2;
/// Highest quantizer (of 63) the rate control may use: the quality floor.
pub const MAX_QUANTIZER: u32 = 40;

/// Encoder ticks per second (RTP's 90 kHz video clock).
const TICKS_PER_SECOND: u128 = 90_000;
/// The duration given with each frame (1/30 s). libvpx uses it only for the first frame's frame
/// rate; later ones come from the distance between timestamps.
const FRAME_TICKS: c_ulong = 3_000;
/// VP8 codes a side in 14 bits.
const MAX_SIDE: u32 = 16_383;
/// Rate-control buffer (ms of the target bitrate): size, initial and optimal level.
const BUFFER_MS: (c_uint, c_uint, c_uint) = (1_000, 500, 600);

/// The tunables, fixed in production ([`Settings::DEFAULT`]), varied by the speed test.
#[derive(Clone, Copy, Debug)]
struct Settings {
    cpu_used: c_int,
    min_quantizer: c_uint,
    max_quantizer: c_uint,
}

impl Settings {
    const DEFAULT: Settings = Settings {
        cpu_used: CPU_USED,
        min_quantizer: MIN_QUANTIZER,
        max_quantizer: MAX_QUANTIZER,
    };
}

/// A VP8 encoder for one viewport size.
pub struct Vp8Encoder {
    /// The libvpx context, boxed so its address never changes while libvpx holds it.
    ctx: Box<vpx_codec_ctx_t>,
    yuv: YUVBuffer,
    width: u32,
    height: u32,
    bitrate: u32,
    clock: Instant,
    /// The smallest timestamp the next frame may have (timestamps strictly increase).
    next_pts: i64,
}

// SAFETY: the codec context is owned by this value (boxed, never shared) and only used through
// `&mut self`, so one thread at a time. libvpx keeps no thread-affine state in it, and with
// `g_threads = 1` it starts no threads of its own, so moving it to another thread between
// calls is sound.
unsafe impl Send for Vp8Encoder {}
// SAFETY: through `&self` only the plain fields (size, bitrate) are read; the codec context is
// reached only through `&mut self`, so shared references never touch libvpx concurrently.
unsafe impl Sync for Vp8Encoder {}

impl Vp8Encoder {
    /// An encoder for `width`×`height` (both even, at most 16383) starting at `bitrate` bits per
    /// second (clamped to [`MIN_BITRATE`]..=[`MAX_BITRATE`]).
    pub fn new(width: u32, height: u32, bitrate: u32) -> Result<Vp8Encoder, EncodeError> {
        Vp8Encoder::with_settings(width, height, bitrate, Settings::DEFAULT)
    }

    fn with_settings(
        width: u32,
        height: u32,
        bitrate: u32,
        settings: Settings,
    ) -> Result<Vp8Encoder, EncodeError> {
        if width == 0
            || height == 0
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || width > MAX_SIDE
            || height > MAX_SIDE
        {
            return Err(EncodeError::Size {
                width,
                height,
                got_width: width,
                got_height: height,
            });
        }
        let bitrate = bitrate.clamp(MIN_BITRATE, MAX_BITRATE);

        // SAFETY: returns a pointer to libvpx's static VP8 encoder interface.
        let iface = unsafe { vpx_codec_vp8_cx() };
        let mut cfg = std::mem::MaybeUninit::<vpx_codec_enc_cfg_t>::uninit();
        // SAFETY: `iface` is the VP8 encoder interface and `cfg` points to writable memory of
        // the right size; on success libvpx has copied a whole default configuration into it
        // (it reads nothing from it).
        let err = unsafe { vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0) };
        if err != VPX_CODEC_OK {
            return Err(vpx_error(None, "default configuration", err));
        }
        // SAFETY: fully written by the successful call above.
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = width;
        cfg.g_h = height;
        cfg.g_threads = 1;
        cfg.g_timebase = vpx_rational {
            num: 1,
            den: TICKS_PER_SECOND as c_int,
        };
        cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
        cfg.g_pass = vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.g_lag_in_frames = 0;
        cfg.rc_dropframe_thresh = 0;
        cfg.rc_resize_allowed = 0;
        cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = bitrate / 1000;
        cfg.rc_min_quantizer = settings.min_quantizer;
        cfg.rc_max_quantizer = settings.max_quantizer;
        cfg.rc_undershoot_pct = 100;
        cfg.rc_overshoot_pct = 15;
        (cfg.rc_buf_sz, cfg.rc_buf_initial_sz, cfg.rc_buf_optimal_sz) = BUFFER_MS;
        cfg.kf_mode = vpx_kf_mode::VPX_KF_DISABLED;
        cfg.kf_min_dist = 0;
        cfg.kf_max_dist = 0;

        let mut encoder = Vp8Encoder {
            // SAFETY: `vpx_codec_ctx_t` is plain data (pointers, integers, a union of pointers
            // and an error enum whose zero is `VPX_CODEC_OK`), so all zeroes is a valid value:
            // the state of a context not yet initialized.
            ctx: Box::new(unsafe { std::mem::zeroed::<vpx_codec_ctx_t>() }),
            yuv: YUVBuffer::new(width as usize, height as usize),
            width,
            height,
            bitrate,
            clock: Instant::now(),
            next_pts: 0,
        };
        // SAFETY: the context is zeroed and boxed (stable address), `cfg` is a complete
        // configuration that libvpx copies into the context (it keeps no pointer to ours), and
        // the ABI version is the one of the headers the bindings were generated from. On
        // failure libvpx leaves the context uninitialized, which `Drop` handles.
        let err = unsafe {
            vpx_codec_enc_init_ver(
                &mut *encoder.ctx,
                iface,
                &cfg,
                0,
                VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if err != VPX_CODEC_OK {
            return Err(vpx_error(Some(&mut *encoder.ctx), "encoder init", err));
        }
        encoder.control(vp8e_enc_control_id::VP8E_SET_CPUUSED, settings.cpu_used)?;
        encoder.control(vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY, 0)?;
        encoder.control(vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD, 0)?;
        Ok(encoder)
    }

    /// Sets one integer encoder control.
    fn control(&mut self, id: vp8e_enc_control_id, value: c_int) -> Result<(), EncodeError> {
        // SAFETY: the context is initialized, and each control used here reads exactly one
        // `int` or `unsigned int` from the variadic arguments (for the unsigned ones the value
        // is non-negative, so it reads the same either way).
        let err = unsafe { vpx_codec_control_(&mut *self.ctx, id as c_int, value) };
        if err != VPX_CODEC_OK {
            return Err(vpx_error(Some(&mut *self.ctx), "encoder control", err));
        }
        Ok(())
    }

    /// Width and height the encoder takes.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The current target bitrate.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Encodes an RGB8 frame of the encoder's size; `keyframe` forces a keyframe.
    pub fn encode(
        &mut self,
        width: u32,
        height: u32,
        rgb: &[u8],
        keyframe: bool,
    ) -> Result<Encoded, EncodeError> {
        let ticks = self.clock.elapsed().as_micros() * TICKS_PER_SECOND / 1_000_000;
        let pts = i64::try_from(ticks).unwrap_or(i64::MAX / 2);
        self.encode_at(width, height, rgb, keyframe, pts)
    }

    /// [`Vp8Encoder::encode`] with the timestamp given (in 1/90000 s; raised if needed so
    /// timestamps strictly increase).
    fn encode_at(
        &mut self,
        width: u32,
        height: u32,
        rgb: &[u8],
        keyframe: bool,
        pts: i64,
    ) -> Result<Encoded, EncodeError> {
        to_yuv(&mut self.yuv, (self.width, self.height), width, height, rgb)?;
        let (y_stride, u_stride, v_stride) = self.yuv.strides();
        let (y, u, v) = (self.yuv.y(), self.yuv.u(), self.yuv.v());
        // An I420 image over the converted planes (libvpx only reads an input image).
        let image = vpx_image_t {
            fmt: vpx_img_fmt::VPX_IMG_FMT_I420,
            cs: vpx_color_space::VPX_CS_BT_601,
            range: vpx_color_range::VPX_CR_STUDIO_RANGE,
            w: width,
            h: height,
            bit_depth: 8,
            d_w: width,
            d_h: height,
            r_w: 0,
            r_h: 0,
            x_chroma_shift: 1,
            y_chroma_shift: 1,
            planes: [
                y.as_ptr().cast_mut(),
                u.as_ptr().cast_mut(),
                v.as_ptr().cast_mut(),
                ptr::null_mut(),
            ],
            stride: [y_stride as c_int, u_stride as c_int, v_stride as c_int, 0],
            bps: 12,
            user_priv: ptr::null_mut(),
            img_data: y.as_ptr().cast_mut(),
            img_data_owner: 0,
            self_allocd: 0,
            fb_priv: ptr::null_mut(),
        };
        let pts = pts.max(self.next_pts);
        self.next_pts = pts.saturating_add(1);
        let flags = if keyframe {
            VPX_EFLAG_FORCE_KF as c_long
        } else {
            0
        };
        // SAFETY: the context is initialized; `image` describes planes of exactly
        // `width`×`height` (and half that for chroma) with their strides, inside `self.yuv`,
        // which is not touched while libvpx runs. libvpx reads the image (the pointers are
        // `*mut` only by the struct's type; it never writes through them) and copies it into
        // its own buffers before returning (no lag), so nothing refers to it afterwards.
        let err = unsafe {
            vpx_codec_encode(
                &mut *self.ctx,
                &image,
                pts,
                FRAME_TICKS,
                flags,
                VPX_DL_REALTIME as c_ulong,
            )
        };
        if err != VPX_CODEC_OK {
            return Err(vpx_error(Some(&mut *self.ctx), "encode", err));
        }

        let mut out: Option<Encoded> = None;
        let mut iter: vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the context is initialized and `iter` is the iterator libvpx started
            // (null) and advances; it returns null after the last packet.
            let packet = unsafe { vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            // SAFETY: a non-null packet points into the context's packet list, valid until
            // the next call that encodes; we copy what we need before that.
            let Some(packet) = (unsafe { packet.as_ref() }) else {
                break;
            };
            if packet.kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: `frame` is the union member libvpx fills for frame packets.
            let frame = unsafe { packet.data.frame };
            if frame.buf.is_null() || frame.sz == 0 {
                continue;
            }
            if out.is_some() {
                return Err(EncodeError::Vpx(
                    "encode: more than one frame for one input".into(),
                ));
            }
            // SAFETY: `buf` and `sz` describe the compressed frame in the context's output
            // buffer, valid until the next encode call; it is copied right here.
            let bytes =
                unsafe { std::slice::from_raw_parts(frame.buf.cast::<u8>(), frame.sz as usize) };
            out = Some(Encoded {
                data: bytes.to_vec(),
                keyframe: frame.flags & VPX_FRAME_IS_KEY != 0,
            });
        }
        out.ok_or_else(|| EncodeError::Vpx("encode: no frame out".into()))
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: the context is either initialized (libvpx frees it and clears it) or still
        // as `new` left it after a failed init (no private state; libvpx returns an error and
        // touches nothing). It is not used after this.
        unsafe {
            vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// An [`EncodeError`] naming the step, libvpx's error and its detail (never frame content).
fn vpx_error(ctx: Option<&mut vpx_codec_ctx_t>, what: &str, err: vpx_codec_err_t) -> EncodeError {
    // SAFETY: returns a pointer to a static NUL-terminated string for every error code.
    let text = unsafe { CStr::from_ptr(vpx_codec_err_to_string(err)) }.to_string_lossy();
    let detail = ctx
        .map(|ctx| {
            // SAFETY: `ctx` is a context libvpx has seen (initialized or after a failed
            // init); the result is null or a NUL-terminated string it owns, read right away.
            let detail = unsafe { vpx_codec_error_detail(ctx) };
            if detail.is_null() {
                String::new()
            } else {
                // SAFETY: non-null, NUL-terminated, alive until the next call on `ctx`.
                let detail = unsafe { CStr::from_ptr(detail) };
                format!(" ({})", detail.to_string_lossy())
            }
        })
        .unwrap_or_default();
    EncodeError::Vpx(format!("{what}: {text}{detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vpx_sys::{
        VPX_DECODER_ABI_VERSION, vpx_codec_dec_cfg_t, vpx_codec_dec_init_ver, vpx_codec_decode,
        vpx_codec_get_frame, vpx_codec_vp8_dx,
    };

    /// libvpx's VP8 decoder, just enough to read frames back.
    struct Decoder {
        ctx: Box<vpx_codec_ctx_t>,
    }

    impl Decoder {
        fn new() -> Decoder {
            // SAFETY: all zeroes is a valid uninitialized context (see `Vp8Encoder::new`).
            let mut ctx = Box::new(unsafe { std::mem::zeroed::<vpx_codec_ctx_t>() });
            let cfg = vpx_codec_dec_cfg_t {
                threads: 1,
                w: 0,
                h: 0,
            };
            // SAFETY: boxed zeroed context, a complete configuration libvpx copies, the
            // bindings' ABI version.
            let err = unsafe {
                vpx_codec_dec_init_ver(
                    &mut *ctx,
                    vpx_codec_vp8_dx(),
                    &cfg,
                    0,
                    VPX_DECODER_ABI_VERSION as c_int,
                )
            };
            assert_eq!(err, VPX_CODEC_OK);
            Decoder { ctx }
        }

        /// Decodes one frame: its width, height and Y plane (rows without padding).
        fn decode(&mut self, data: &[u8]) -> (u32, u32, Vec<u8>) {
            // SAFETY: initialized context; `data` is valid for its length during the call.
            let err = unsafe {
                vpx_codec_decode(
                    &mut *self.ctx,
                    data.as_ptr(),
                    data.len() as c_uint,
                    ptr::null_mut(),
                    0,
                )
            };
            assert_eq!(err, VPX_CODEC_OK, "decode");
            let mut iter: vpx_codec_iter_t = ptr::null();
            // SAFETY: initialized context; `iter` starts null.
            let image = unsafe { vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            // SAFETY: a non-null image is owned by the decoder until the next decode call.
            let image = unsafe { image.as_ref() }.expect("a decoded frame");
            let (width, height) = (image.d_w as usize, image.d_h as usize);
            let stride = image.stride[0] as usize;
            let mut y = Vec::with_capacity(width * height);
            for row in 0..height {
                // SAFETY: the Y plane has `d_h` rows of `stride` ≥ `d_w` bytes.
                let line =
                    unsafe { std::slice::from_raw_parts(image.planes[0].add(row * stride), width) };
                y.extend_from_slice(line);
            }
            (image.d_w, image.d_h, y)
        }
    }

    impl Drop for Decoder {
        fn drop(&mut self) {
            // SAFETY: initialized in `new`, not used after this.
            unsafe {
                vpx_codec_destroy(&mut *self.ctx);
            }
        }
    }

    /// A smooth synthetic image, moving with `t`.
    fn smooth(width: u32, height: u32, t: u32) -> Vec<u8> {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        let t = t as f32;
        for y in 0..height {
            for x in 0..width {
                let (x, y) = (x as f32, y as f32);
                let r = 128.0 + 90.0 * ((x + 2.0 * t) / 41.0).sin() * (y / 57.0).cos();
                let g = 110.0 + 70.0 * ((x + y + 3.0 * t) / 73.0).sin();
                let b = 60.0 + 40.0 * ((y - t) / 29.0).cos();
                rgb.extend_from_slice(&[r as u8, g as u8, b as u8]);
            }
        }
        rgb
    }

    /// Something unlike [`smooth`]: a hard-edged checkerboard (a scene cut).
    fn checkers(width: u32, height: u32) -> Vec<u8> {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                let on = ((x / 24) + (y / 24)) % 2 == 0;
                rgb.extend_from_slice(if on { &[230, 230, 230] } else { &[20, 40, 90] });
            }
        }
        rgb
    }

    /// The Y plane the encoder was given for `rgb` (the same conversion).
    fn luma(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
        let yuv = YUVBuffer::from_rgb8_source(openh264::formats::RgbSliceU8::new(
            rgb,
            (width as usize, height as usize),
        ));
        yuv.y().to_vec()
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let sse: f64 = a
            .iter()
            .zip(b)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let mse = sse / a.len() as f64;
        if mse == 0.0 {
            return f64::INFINITY;
        }
        10.0 * (255.0 * 255.0 / mse).log10()
    }

    /// Checks the VP8 frame tag: keyframe bit, and for keyframes the start code and size.
    fn assert_frame_tag(data: &[u8], keyframe: bool, width: u32, height: u32) {
        assert!(data.len() > 10, "frame of {} bytes", data.len());
        assert_eq!(data[0] & 1 == 0, keyframe, "frame type bit");
        if keyframe {
            assert_eq!(&data[3..6], &[0x9d, 0x01, 0x2a], "keyframe start code");
            let w = u32::from(u16::from_le_bytes([data[6], data[7]]) & 0x3fff);
            let h = u32::from(u16::from_le_bytes([data[8], data[9]]) & 0x3fff);
            assert_eq!((w, h), (width, height));
        }
    }

    #[test]
    fn vp8_keyframes_come_first_and_when_forced_only() {
        // Not a multiple of 16, so libvpx pads the edges.
        let (width, height) = (326, 246);
        let mut encoder = Vp8Encoder::new(width, height, 2_000_000).unwrap();
        let mut decoder = Decoder::new();
        for n in 0..14 {
            let rgb = if n == 9 {
                checkers(width, height)
            } else {
                smooth(width, height, n)
            };
            let forced = n == 6;
            let encoded = encoder.encode(width, height, &rgb, forced).unwrap();
            let expected = n == 0 || forced;
            assert_eq!(encoded.keyframe, expected, "frame {n}");
            assert_frame_tag(&encoded.data, expected, width, height);
            let (w, h, _) = decoder.decode(&encoded.data);
            assert_eq!((w, h), (width, height));
        }
    }

    #[test]
    fn vp8_round_trip_keeps_the_image() {
        let (width, height) = (640, 480);
        let mut encoder = Vp8Encoder::new(width, height, 8_000_000).unwrap();
        let mut decoder = Decoder::new();
        let mut worst = f64::INFINITY;
        for n in 0..10u32 {
            let rgb = smooth(width, height, n);
            // 30 frames per second, as a user dragging would give.
            let encoded = encoder
                .encode_at(width, height, &rgb, false, i64::from(n) * 3_000)
                .unwrap();
            let (w, h, y) = decoder.decode(&encoded.data);
            assert_eq!((w, h), (width, height));
            let quality = psnr(&y, &luma(width, height, &rgb));
            assert!(quality > 35.0, "frame {n}: PSNR {quality:.1} dB");
            worst = worst.min(quality);
        }
        eprintln!("vp8 round trip 640x480 @ 8 Mbit/s: worst Y PSNR {worst:.1} dB");
    }

    #[test]
    fn vp8_wrong_sizes_are_refused() {
        for (width, height) in [(321, 240), (320, 241), (0, 240), (320, 0), (16_384, 240)] {
            assert!(
                matches!(
                    Vp8Encoder::new(width, height, 1_000_000),
                    Err(EncodeError::Size { .. })
                ),
                "{width}x{height}"
            );
        }
        let mut encoder = Vp8Encoder::new(320, 240, 1_000_000).unwrap();
        assert!(matches!(
            encoder.encode(320, 200, &smooth(320, 200, 0), false),
            Err(EncodeError::Size { .. })
        ));
        let frame = smooth(320, 240, 0);
        assert!(matches!(
            encoder.encode(320, 240, &frame[..frame.len() - 3], false),
            Err(EncodeError::Size { .. })
        ));
        assert!(matches!(
            encoder.encode(320, 240, &[frame.as_slice(), &[0, 0, 0]].concat(), false),
            Err(EncodeError::Size { .. })
        ));
        // The encoder is still usable, and its first frame is still the keyframe.
        assert!(encoder.encode(320, 240, &frame, false).unwrap().keyframe);
    }

    #[test]
    fn vp8_bitrates_are_clamped_and_timestamps_only_increase() {
        assert_eq!(Vp8Encoder::new(320, 240, 1).unwrap().bitrate(), MIN_BITRATE);
        let mut encoder = Vp8Encoder::new(320, 240, u32::MAX).unwrap();
        assert_eq!(encoder.bitrate(), MAX_BITRATE);
        assert_eq!(encoder.size(), (320, 240));
        let frame = smooth(320, 240, 0);
        encoder.encode_at(320, 240, &frame, false, 90_000).unwrap();
        // A timestamp from the past (or the same one) is moved after the last.
        encoder.encode_at(320, 240, &frame, false, 0).unwrap();
        encoder.encode_at(320, 240, &frame, false, 90_001).unwrap();
        assert_eq!(encoder.next_pts, 90_003);
        encoder.encode(320, 240, &frame, false).unwrap();
    }

    #[test]
    fn vp8_libvpx_refusals_are_errors() {
        // libvpx validates the configuration at init and names the problem.
        let settings = Settings {
            min_quantizer: 40,
            max_quantizer: 2,
            ..Settings::DEFAULT
        };
        match Vp8Encoder::with_settings(320, 240, 1_000_000, settings) {
            Err(EncodeError::Vpx(message)) => {
                assert!(message.starts_with("encoder init: "), "{message}");
                assert!(message.contains("rc_min_quantizer"), "{message}");
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("libvpx accepted min quantizer > max"),
        }
    }

    #[test]
    fn vp8_encoder_can_move_between_threads() {
        fn send<T: Send>(value: T) -> T {
            value
        }
        let mut encoder = send(Vp8Encoder::new(64, 64, 1_000_000).unwrap());
        let handle = std::thread::spawn(move || {
            encoder
                .encode(64, 64, &smooth(64, 64, 0), false)
                .map(|encoded| encoded.keyframe)
        });
        assert!(handle.join().unwrap().unwrap());
    }

    /// A fundus-like test card `width`×`height` (dark surround, a bright disc with a radial
    /// falloff, an optic disc, vessels and fine texture), wide enough to pan `pan` pixels.
    fn fundus(width: u32, height: u32, pan: u32) -> (u32, Vec<u8>) {
        let canvas = width + pan;
        let (cx, cy) = (canvas as f32 / 2.0, height as f32 / 2.0);
        let radius = 0.47 * height as f32;
        let mut rgb = Vec::with_capacity((canvas * height * 3) as usize);
        for y in 0..height {
            for x in 0..canvas {
                let (fx, fy) = (x as f32 - cx, y as f32 - cy);
                let d = (fx * fx + fy * fy).sqrt() / radius;
                if d >= 1.0 {
                    rgb.extend_from_slice(&[2, 2, 2]);
                    continue;
                }
                let base = (1.0 - d * d).powf(0.3);
                let (ox, oy) = (fx - 0.35 * radius, fy);
                let disc = (-(ox * ox + oy * oy) / (0.015 * radius * radius)).exp();
                let mut vessel = 0.0f32;
                for k in 0..6 {
                    let k = k as f32;
                    let curve = 0.6 * radius * ((fx / radius) * (1.3 + 0.4 * k) + k).sin()
                        - 0.5 * radius
                        + 0.2 * radius * k;
                    let dist = (fy - curve).abs() / (2.0 + k * 0.6);
                    vessel = vessel.max((-dist * dist).exp());
                }
                let hash = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 9;
                let texture = hash as f32 - 4.0;
                let r = 35.0 + 170.0 * base + 50.0 * disc - 60.0 * vessel + texture;
                let g = 15.0 + 80.0 * base + 90.0 * disc - 40.0 * vessel + texture * 0.6;
                let b = 8.0 + 25.0 * base + 60.0 * disc - 10.0 * vessel;
                rgb.extend_from_slice(&[
                    r.clamp(0.0, 255.0) as u8,
                    g.clamp(0.0, 255.0) as u8,
                    b.clamp(0.0, 255.0) as u8,
                ]);
            }
        }
        (canvas, rgb)
    }

    fn crop(canvas: &[u8], canvas_width: u32, x: u32, width: u32, height: u32) -> Vec<u8> {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for row in 0..height {
            let start = ((row * canvas_width + x) * 3) as usize;
            rgb.extend_from_slice(&canvas[start..start + (width * 3) as usize]);
        }
        rgb
    }

    /// OCT-like B-scans `width`×`height`, one per slice: retinal layers following a gently
    /// curved surface that moves from slice to slice, under multiplicative speckle that is new
    /// in every slice (the worst case: every frame changes everywhere).
    fn oct(width: u32, height: u32, slice: u32) -> Vec<u8> {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        let s = slice as f32;
        for y in 0..height {
            for x in 0..width {
                let fx = x as f32 / width as f32;
                let surface = height as f32
                    * (0.35 + 0.06 * (fx * 5.0 + s * 0.05).sin()
                        - 0.08 * (-((fx - 0.5) / 0.08).powi(2)).exp());
                let depth = (y as f32 - surface) / height as f32;
                let layer = if depth < 0.0 {
                    4.0
                } else if depth < 0.02 {
                    200.0
                } else if depth < 0.08 {
                    70.0 + 40.0 * (depth * 90.0).sin().abs()
                } else if depth < 0.11 {
                    25.0
                } else if depth < 0.14 {
                    230.0
                } else {
                    120.0 * (-(depth - 0.14) * 9.0).exp()
                };
                let hash = (x.wrapping_mul(0x9e37_79b9)
                    ^ y.wrapping_mul(0x85eb_ca6b)
                    ^ slice.wrapping_mul(0xc2b2_ae35))
                .wrapping_mul(0x2752_0f3d);
                let uniform = ((hash >> 8) as f32 + 0.5) / (1u32 << 24) as f32;
                let value = (layer * -uniform.ln()).min(255.0) as u8;
                rgb.extend_from_slice(&[value, value, value]);
            }
        }
        rgb
    }

    /// Encode time, size and quality at the streaming benchmark's frame size, for a range of
    /// settings and two scenes (a fundus panned 4 px per frame, OCT slices scrolled one per
    /// frame), frames at 30 per second:
    /// `cargo test -p readroom-worker speed_at_1526x880 -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; prints a table"]
    fn speed_at_1526x880() {
        let (width, height, frames, step) = (1526u32, 880u32, 60u32, 4u32);
        let (canvas_width, canvas) = fundus(width, height, frames * step);
        let fundus_frames: Vec<Vec<u8>> = (0..frames)
            .map(|n| crop(&canvas, canvas_width, n * step, width, height))
            .collect();
        let oct_frames: Vec<Vec<u8>> = (0..frames).map(|n| oct(width, height, n)).collect();
        let mut runs: Vec<Settings> = [4, 6, 8, 10, 12, 14, 16, -4, -6, -8, -10, -12, -14, -16]
            .into_iter()
            .map(|cpu_used| Settings {
                cpu_used,
                ..Settings::DEFAULT
            })
            .collect();
        for (min_quantizer, max_quantizer) in [(2, 48), (4, 56), (2, 63)] {
            runs.push(Settings {
                min_quantizer,
                max_quantizer,
                ..Settings::DEFAULT
            });
        }
        for (scene, inputs) in [("fundus pan", &fundus_frames), ("OCT scroll", &oct_frames)] {
            let lumas: Vec<Vec<u8>> = inputs.iter().map(|rgb| luma(width, height, rgb)).collect();
            for bitrate in [8_000_000u32, 2_000_000] {
                eprintln!(
                    "{scene}: {width}x{height}, {frames} frames at 30 fps, {} Mbit/s",
                    bitrate / 1_000_000
                );
                eprintln!(
                    "cpu_used  q      key ms  key KB  key dB | inter ms p50   p95  mean  mean KB  mean dB  min dB"
                );
                for settings in &runs {
                    let mut encoder =
                        Vp8Encoder::with_settings(width, height, bitrate, *settings).unwrap();
                    let mut decoder = Decoder::new();
                    let label = format!(
                        "{:>8}  {:>2}..{:<2}",
                        settings.cpu_used, settings.min_quantizer, settings.max_quantizer
                    );
                    report(
                        &label,
                        inputs,
                        &lumas,
                        |n, rgb| {
                            encoder
                                .encode_at(width, height, rgb, false, n as i64 * 3_000)
                                .unwrap()
                                .data
                        },
                        |data| decoder.decode(data).2,
                    );
                }
                // The H.264 path on the same frames, for comparison.
                let mut encoder = crate::encode::H264Encoder::new(width, height, bitrate).unwrap();
                let mut decoder = openh264::decoder::Decoder::new().unwrap();
                report(
                    "H.264 (openh264)",
                    inputs,
                    &lumas,
                    |_, rgb| encoder.encode(width, height, rgb, false).unwrap().data,
                    |data| {
                        let yuv = decoder.decode(data).unwrap().expect("a decoded frame");
                        let stride = yuv.strides().0;
                        yuv.y()
                            .chunks(stride)
                            .take(height as usize)
                            .flat_map(|row| &row[..width as usize])
                            .copied()
                            .collect()
                    },
                );
            }
        }
    }

    /// Encodes and decodes `inputs` in order and prints one row of timings, sizes and Y PSNR.
    fn report(
        label: &str,
        inputs: &[Vec<u8>],
        lumas: &[Vec<u8>],
        mut encode: impl FnMut(usize, &[u8]) -> Vec<u8>,
        mut decode: impl FnMut(&[u8]) -> Vec<u8>,
    ) {
        let mut times = Vec::new();
        let mut sizes = Vec::new();
        let mut quality = Vec::new();
        for (n, rgb) in inputs.iter().enumerate() {
            let started = Instant::now();
            let data = encode(n, rgb);
            times.push(started.elapsed().as_secs_f64() * 1e3);
            sizes.push(data.len() as f64 / 1024.0);
            quality.push(psnr(&decode(&data), &lumas[n]));
        }
        let count = (inputs.len() - 1) as f64;
        let mean = times[1..].iter().sum::<f64>() / count;
        let mut inter: Vec<f64> = times[1..].to_vec();
        inter.sort_by(f64::total_cmp);
        eprintln!(
            "{label:<16}  {:>6.1}  {:>6.1}  {:>6.1} | {:>12.1}  {:>4.1}  {:>4.1}  {:>7.1}  {:>7.1}  {:>6.1}",
            times[0],
            sizes[0],
            quality[0],
            inter[inter.len() / 2],
            inter[inter.len() * 95 / 100],
            mean,
            sizes[1..].iter().sum::<f64>() / count,
            quality[1..].iter().sum::<f64>() / count,
            quality[1..].iter().copied().fold(f64::INFINITY, f64::min),
        );
    }
}
