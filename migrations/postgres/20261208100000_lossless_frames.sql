-- Lossless frames workers sent, as the worker reported them (its record, whatever the browser
-- said): who, which case, the SHA-256 of the exact RGB frame, the bytes that went out and the
-- render state (exam, slice, zoom, centre, W/L, filters, viewport). A grade that names a
-- lossless frame (`lossless_sha256`) must name one of these, sent to the same user for the same
-- case: grade evidence attested by the server, not by the browser.
CREATE TABLE lossless_frames (
    stream_id uuid   NOT NULL,
    frame     bigint NOT NULL,
    user_id   uuid   NOT NULL,
    case_id   uuid   NOT NULL,
    sha256    text   NOT NULL CHECK (length(sha256) = 64),
    bytes     bigint NOT NULL,
    revealed_px bigint NOT NULL,
    state     text   NOT NULL,
    sent_unix bigint NOT NULL,
    PRIMARY KEY (stream_id, frame)
);
CREATE INDEX lossless_frames_user_case ON lossless_frames (user_id, case_id, sha256);
CREATE INDEX lossless_frames_user_case_time ON lossless_frames (user_id, case_id, sent_unix);
