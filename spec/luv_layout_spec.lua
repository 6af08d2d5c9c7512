-- Our handles start with a mirror of luv's luv_handle_t, and we read the
-- loop from the head of luv_ctx_t: the installed luv headers must agree.
describe("luv compatibility", function()
  it("mirrors luv's handle and context layout", function()
    local tmp = os.tmpname()
    local cmd = ("cc -I/usr/include/lua5.4 -Icsrc spec/support/luv_layout.c -o %s 2>&1 && %s 2>&1")
      :format(tmp, tmp)
    local p = io.popen(cmd)
    local out = p:read("*a")
    p:close()
    os.remove(tmp)
    assert.matches("layout matches", out)
  end)
end)
