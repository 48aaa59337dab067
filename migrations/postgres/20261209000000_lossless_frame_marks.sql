-- The watermark each lossless frame carried (JSON: label, session, unix_minute), so that
-- `readroom grade verify` can render the frame again (PostgreSQL). NULL for frames recorded
-- before December 2026. Same as migrations/sqlite/20261209000000_lossless_frame_marks.sql.
ALTER TABLE lossless_frames ADD COLUMN mark TEXT;
