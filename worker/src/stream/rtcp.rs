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

/// Loss-based bitrate control (the loss half of Google Congestion Control): above 10 % loss
/// cut by half the loss, under 2 % grow by 5 %, in between hold.
pub fn next_bitrate(current: u32, loss: f32) -> u32 {
    let current = f64::from(current);
    let next = if loss > 0.10 {
        current * (1.0 - 0.5 * f64::from(loss))
    } else if loss < 0.02 {
        current * 1.05
    } else {
        current
    };
    next.clamp(0.0, f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrate_falls_with_loss_and_recovers_without() {
        assert_eq!(next_bitrate(1_000_000, 0.5), 750_000);
        assert_eq!(next_bitrate(1_000_000, 0.05), 1_000_000);
        assert_eq!(next_bitrate(1_000_000, 0.0), 1_050_000);
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
