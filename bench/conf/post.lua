-- wrk script for the `http-post` case: a 1 KiB form POST, the size of a
-- typical Laravel form submit (a CSRF token and a few fields).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "_token=" .. string.rep("t", 40) .. "&name=portico&message=" .. string.rep("m", 950)
