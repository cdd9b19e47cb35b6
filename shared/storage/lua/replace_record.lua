-- replace_record: store a record's new form only if it is still the form it was read in.
--
-- An administrator's change (a client's settings, a person's enabled flag) is made to
-- the record as read; should anything have changed it meanwhile, the change is not
-- written over it: the caller reads the record again and makes its change anew. So no
-- change is lost, and no command that may have run is retried.
--
-- KEYS[1]  record    the record (JSON)
-- ARGV[1]  expected  the record as it was read
-- ARGV[2]  replaced  the record to store in its place
-- Returns: 1 when stored, 0 when the record had changed or is gone.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
