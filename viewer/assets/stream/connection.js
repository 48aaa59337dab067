// One WebRTC connection to a worker for one case: a receive-only H.264 video transceiver and the
// `control` data channel, negotiated without trickle ICE through `POST /api/cases/{id}/stream`.
// The viewer (viewer.js) owns reconnecting; this module only opens, reports and closes.

import { api, takeEmbeddedAnswer } from "../api.js";
import { CHANNEL } from "./protocol.js";

/** How long to wait for ICE gathering before sending the offer with what was gathered. */
const GATHER_TIMEOUT_MS = 2500;
/** The peer connection's bundle policy (`setConfiguration` must repeat it). */
const BUNDLE_POLICY = "max-bundle";

/** The server's ICE settings (`GET /api/stream/config`), and when to fetch them again. */
let iceConfig = null;
let iceConfigStaleAt = 0;
/** The fetch of them in flight (shared: a warm-up and the connection it is for ask once). */
let iceConfigLoading = null;

/**
 * A User Timing mark (`readroom:<phase>`) of the connection's progress, for the browser's
 * performance panel and the streaming benchmark's first-frame breakdown. Names only: no data.
 */
export function mark(phase, startTime = undefined) {
  if (typeof performance === "undefined" || !performance.mark) return;
  if (startTime === undefined) performance.mark(`readroom:${phase}`);
  else performance.mark(`readroom:${phase}`, { startTime });
}

/**
 * The ICE servers and transport policy. TURN credentials are short-lived
 * (`credentials_expire_in_secs`): they are fetched again once half their lifetime has passed,
 * so a connection opened later in the day never presents an expired credential.
 */
function loadIceConfig({ redirectOn401 = true } = {}) {
  if (iceConfig && Date.now() < iceConfigStaleAt) return Promise.resolve(iceConfig);
  if (!iceConfigLoading) {
    iceConfigLoading = fetchIceConfig(redirectOn401).finally(() => {
      iceConfigLoading = null;
    });
  }
  return iceConfigLoading;
}

/**
 * Starts fetching the ICE settings before a connection needs them: on a case page's cold load,
 * beside `GET /api/me`, instead of after the page is built. Failures are left to the connection.
 */
export function warmIceConfig() {
  loadIceConfig({ redirectOn401: false }).catch(() => {});
}

async function fetchIceConfig(redirectOn401) {
  // A case page's entry HTML carries the answer at page load (api.js, takeEmbeddedAnswer).
  const config = takeEmbeddedAnswer("readroom-stream-config") || (await api("/api/stream/config", { redirectOn401 }));
  const servers = (config && Array.isArray(config.ice_servers) ? config.ice_servers : []).map((server) => ({
    urls: server.urls,
    ...(server.username ? { username: server.username } : {}),
    ...(server.credential ? { credential: server.credential } : {}),
  }));
  const policy = config && config.ice_transport_policy === "relay" ? "relay" : "all";
  const expiresIn = config && Number(config.credentials_expire_in_secs);
  iceConfigStaleAt = expiresIn > 0 ? Date.now() + (expiresIn * 1000) / 2 : Infinity;
  iceConfig = { servers, policy };
  return iceConfig;
}

/** H.264 first (constrained baseline, packetization mode 1: what the worker encodes). */
function preferH264(transceiver) {
  if (typeof RTCRtpReceiver === "undefined" || !RTCRtpReceiver.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpReceiver.getCapabilities("video");
  if (!caps) return;
  const rank = (codec) => {
    if (codec.mimeType.toLowerCase() !== "video/h264") return 3;
    const fmtp = codec.sdpFmtpLine || "";
    if (fmtp.includes("profile-level-id=42e01f") && fmtp.includes("packetization-mode=1")) return 0;
    return fmtp.includes("packetization-mode=1") ? 1 : 2;
  };
  const sorted = [...caps.codecs].sort((a, b) => rank(a) - rank(b));
  try {
    transceiver.setCodecPreferences(sorted);
  } catch {
    // Keep the browser's own order; the worker still finds H.264 in the offer.
  }
}

/** The URL scheme of each configured ICE server URL (`stun`, `turn`, `turns`). */
function schemes(servers) {
  const out = new Set();
  for (const server of servers) {
    for (const url of [].concat(server.urls || [])) out.add(String(url).split(":")[0].toLowerCase());
  }
  return out;
}

/** A gathered candidate's type (`host`, `srflx`, `prflx`, `relay`). */
function candidateType(candidate) {
  if (candidate.type) return candidate.type;
  const match = / typ ([a-z]+)/.exec(candidate.candidate || "");
  return match ? match[1] : "";
}

/**
 * Resolves when the offer carries the candidates the worker can use: at once without ICE
 * servers; with them, when gathering is complete, or earlier once a candidate of the kind the
 * configured servers are there for has been gathered (a relay candidate with a TURN server, a
 * server-reflexive one with only STUN), or after GATHER_TIMEOUT_MS with what there is.
 *
 * The worker does not need the browser's candidates to connect: it answers the browser's
 * connectivity checks from wherever they come (peer-reflexive candidates), so the browser's own
 * candidates only have to cover the case where the worker must reach the browser first (a
 * relay, a mapped address). Its host candidates are of no use to the worker at all: Chromium
 * names them by mDNS (`<uuid>.local`), which workers do not resolve, and it announced the first
 * one 130–190 ms after `setLocalDescription` (measured on the network benchmark: the mDNS name
 * is registered first), all of it on the way to the first image. Checks still start from the
 * browser's host ports as soon as they are bound.
 */
function candidatesReady(pc, servers) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  const kinds = schemes(servers);
  if (!kinds.size) return Promise.resolve();
  const wanted = kinds.has("turn") || kinds.has("turns") ? "relay" : "srflx";
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      pc.removeEventListener("icecandidate", gathered);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const gathered = (event) => {
      if (!event.candidate || !event.candidate.candidate || candidateType(event.candidate) === wanted) done();
    };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
    pc.addEventListener("icecandidate", gathered);
  });
}

/**
 * A connection. Callbacks: `onTrack(stream)`, `onOpen()`, `onText(string)`, `onBinary(ArrayBuffer)`,
 * `onLost(reason)` — called once when the connection fails, closes or stays disconnected.
 */
export class StreamConnection {
  constructor(handlers) {
    this.handlers = handlers;
    this.pc = null;
    this.channel = null;
    this.closed = false;
    this.disconnectTimer = null;
    this.lostReported = false;
    this.answer = null;
  }

  /**
   * Negotiates with the worker. Resolves to the server's answer (`viewer_session`,
   * `session_id`); rejects with the API error (400, 404, 503…) or a network error.
   */
  async open(caseId, viewport, viewerSession) {
    mark("open");
    // The ICE servers are fetched while the offer is made; gathering starts with
    // setLocalDescription, so they are set just before it.
    const configLoaded = loadIceConfig();
    configLoaded.catch(() => {});
    const pc = new RTCPeerConnection({ bundlePolicy: BUNDLE_POLICY });
    this.pc = pc;
    const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
    preferH264(transceiver);
    const channel = pc.createDataChannel(CHANNEL, { ordered: true });
    channel.binaryType = "arraybuffer";
    this.channel = channel;

    pc.addEventListener("track", (event) => {
      const stream = event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]);
      this.handlers.onTrack(stream);
    });
    pc.addEventListener("connectionstatechange", () => this.onConnectionState());
    pc.addEventListener("iceconnectionstatechange", () => {
      if (pc.iceConnectionState === "connected") mark("ice-connected");
    });
    channel.addEventListener("open", () => {
      mark("channel-open");
      this.handlers.onOpen();
    });
    channel.addEventListener("close", () => this.lost("channel_closed"));
    channel.addEventListener("message", (event) => {
      if (typeof event.data === "string") this.handlers.onText(event.data);
      else if (event.data instanceof ArrayBuffer) this.handlers.onBinary(event.data);
    });

    const offer = await pc.createOffer();
    const { servers, policy } = await configLoaded;
    if (this.closed) throw new Error("closed");
    if (servers.length || policy !== "all") {
      pc.setConfiguration({ iceServers: servers, iceTransportPolicy: policy, bundlePolicy: BUNDLE_POLICY });
    }
    const ready = candidatesReady(pc, servers);
    await pc.setLocalDescription(offer);
    await ready;
    if (this.closed) throw new Error("closed");
    const body = {
      offer: { type: "offer", sdp: pc.localDescription.sdp },
      viewport,
      ...(viewerSession ? { viewer_session: viewerSession } : {}),
    };
    mark("offer-sent");
    const answer = await api(`/api/cases/${encodeURIComponent(caseId)}/stream`, { method: "POST", body });
    mark("answer");
    if (this.closed) throw new Error("closed");
    await pc.setRemoteDescription(answer.answer);
    this.answer = answer;
    return answer;
  }

  onConnectionState() {
    const state = this.pc && this.pc.connectionState;
    if (state === "failed" || state === "closed") {
      this.lost(`connection_${state}`);
    } else if (state === "disconnected") {
      // Often recovers by itself within a few seconds (ICE consent); the worker gives 5 s.
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = setTimeout(() => this.lost("connection_disconnected"), 4000);
    } else if (state === "connected") {
      mark("connected");
      clearTimeout(this.disconnectTimer);
    }
  }

  lost(reason) {
    if (this.closed || this.lostReported) return;
    this.lostReported = true;
    this.handlers.onLost(reason);
  }

  /** Whether the control channel can carry a message now. */
  ready() {
    return !this.closed && this.channel && this.channel.readyState === "open";
  }

  /** Sends a text message; false if the channel is not open. */
  send(text) {
    if (!this.ready()) return false;
    this.channel.send(text);
    return true;
  }

  /**
   * Inbound video statistics (`framesDecoded`, `frameWidth`, …), the path's round trip, and the
   * selected candidate pair's candidate types (`localCandidateType`: `host`, `srflx`, `relay`;
   * `relayProtocol`: how the browser reaches its TURN server, `udp`, `tcp` or `tls`).
   */
  async stats() {
    const out = {};
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp" && entry.kind === "video") {
        Object.assign(out, {
          framesDecoded: entry.framesDecoded || 0,
          framesDropped: entry.framesDropped || 0,
          frameWidth: entry.frameWidth || 0,
          frameHeight: entry.frameHeight || 0,
          framesPerSecond: entry.framesPerSecond || 0,
          packetsLost: entry.packetsLost || 0,
          packetsReceived: entry.packetsReceived || 0,
          jitter: entry.jitter || 0,
          bytesReceived: entry.bytesReceived || 0,
          keyFramesDecoded: entry.keyFramesDecoded || 0,
          totalDecodeTime: entry.totalDecodeTime || 0,
          codec: entry.codecId || null,
          // `video/H264`, or `video/VP8` when the browser offered no H.264.
          mimeType: (entry.codecId && report.get(entry.codecId)?.mimeType) || null,
        });
      } else if (entry.type === "candidate-pair" && entry.nominated && entry.state === "succeeded") {
        out.roundTripMs = entry.currentRoundTripTime !== undefined ? entry.currentRoundTripTime * 1000 : null;
      } else if (entry.type === "transport" && entry.selectedCandidatePairId) {
        const pair = report.get(entry.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId);
        const remote = pair && report.get(pair.remoteCandidateId);
        if (local) {
          out.localCandidateType = local.candidateType || null;
          out.relayProtocol = local.relayProtocol || null;
        }
        if (remote) out.remoteCandidateType = remote.candidateType || null;
      }
    });
    return out;
  }

  /** Closes the peer connection (the worker sees the channel close and ends the session). */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.disconnectTimer);
    try {
      if (this.channel) this.channel.close();
    } catch {
      // Already closed.
    }
    if (this.pc) this.pc.close();
  }
}
