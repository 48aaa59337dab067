//! Hands the RTCP feedback the session acts on to the application: keyframe requests (PLI,
//! FIR) and receiver reports (loss, for the bitrate). Everything else stays with the
//! interceptors (NACK responder, sender reports).

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Feedback the session reacts to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feedback {
    /// The receiver needs a keyframe (PLI or FIR).
    KeyframeRequest,
    /// Fraction of packets lost since the last report (0..=1).
    Loss(f32),
}

/// Reads the feedback out of a batch of RTCP packets.
pub fn feedback(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<Feedback> {
    let mut out = Vec::new();
    for packet in packets {
        let any = packet.as_any();
        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            out.push(Feedback::KeyframeRequest);
        } else if let Some(report) = any.downcast_ref::<ReceiverReport>() {
            for block in &report.reports {
                out.push(Feedback::Loss(f32::from(block.fraction_lost) / 256.0));
            }
        }
    }
    out
}

fn wanted(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() || any.is::<ReceiverReport>()
}

/// The interceptor; register it last so the others have seen every packet first.
#[derive(Default)]
pub struct FeedbackForwarder {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let kept: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| wanted(p.as_ref()))
                .cloned()
                .collect();
            if kept.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(kept);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for FeedbackForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Lowest bitrate loss may push the video to, bits per second.
pub const MIN_BITRATE: u32 = 250_000;

/// Loss-based bitrate control (the loss half of Google Congestion Control): above 10 % loss
/// cut by half the loss, under 2 % grow by 5 %, in between hold; always within
/// [`MIN_BITRATE`]..=`ceiling` (the configured bitrate: loss alone says nothing about spare
/// capacity, so without the ceiling a clean link would ramp the bitrate, and the bytes per
/// case, without bound).
pub fn next_bitrate(current: u32, loss: f32, ceiling: u32) -> u32 {
    let current = f64::from(current);
    let next = if loss > 0.10 {
        current * (1.0 - 0.5 * f64::from(loss))
    } else if loss < 0.02 {
        current * 1.05
    } else {
        current
    };
    let ceiling = ceiling.max(MIN_BITRATE);
    next.clamp(f64::from(MIN_BITRATE), f64::from(ceiling)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrate_falls_with_loss_and_recovers_without() {
        let ceiling = 8_000_000;
        assert_eq!(next_bitrate(1_000_000, 0.5, ceiling), 750_000);
        assert_eq!(next_bitrate(1_000_000, 0.05, ceiling), 1_000_000);
        assert_eq!(next_bitrate(1_000_000, 0.0, ceiling), 1_050_000);
    }

    #[test]
    fn bitrate_stays_between_the_floor_and_the_configured_ceiling() {
        let ceiling = 8_000_000;
        let mut rate = ceiling;
        for _ in 0..100 {
            rate = next_bitrate(rate, 0.0, ceiling);
        }
        assert_eq!(
            rate, ceiling,
            "a clean link does not ramp past the configured bitrate"
        );
        for _ in 0..100 {
            rate = next_bitrate(rate, 0.9, ceiling);
        }
        assert_eq!(rate, MIN_BITRATE);
        assert_eq!(next_bitrate(100_000, 0.0, 50_000), MIN_BITRATE);
    }

    #[test]
    fn keyframe_requests_and_loss_are_read() {
        let packets: Vec<Box<dyn rtc::rtcp::Packet>> = vec![
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: 2,
            }),
            Box::new(ReceiverReport {
                ssrc: 1,
                reports: vec![rtc::rtcp::reception_report::ReceptionReport {
                    ssrc: 2,
                    fraction_lost: 64,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ];
        assert_eq!(
            feedback(&packets),
            vec![Feedback::KeyframeRequest, Feedback::Loss(0.25)]
        );
    }
}
