-- wrk -t THREADS -s wrk-count.lua URL -- REQUESTS THREADS DIR
--
-- Each of the THREADS wrk threads stops once it has had its share of REQUESTS
-- responses, and leaves DIR/done.ID.  wrk's main thread sleeps out -d all the
-- same: when every done file is there, interrupt it (SIGINT, as many times as
-- it takes: one that comes before it sleeps is lost), and it prints its
-- summary at once.  wrk still counts every response's status and every socket
-- error; "N requests in" is at least REQUESTS when every thread got its share.
local count = 0
function setup(thread)
    count = count + 1
    thread:set("id", count)
end

local left, dir
function init(args)
    left, dir = math.ceil(tonumber(args[1]) / tonumber(args[2])), args[3]
end

function response(status, headers, body)
    left = left - 1
    if left == 0 then
        wrk.thread:stop()
        io.open(dir .. "/done." .. id, "w"):close()
    end
end
