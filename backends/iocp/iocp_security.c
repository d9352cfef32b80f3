/*
 * The security descriptor of every named pipe reseau creates: the instances
 * of a LOCAL listener and the read end of rs_pipe_new.
 *
 * A named pipe created with a NULL descriptor gets the default one, which
 * CreateNamedPipe's documentation describes as granting full control to
 * LocalSystem, administrators and the creator owner, and read access to
 * members of the Everyone group and the anonymous account. reseau's pipes
 * carry a stream between processes of one user: their DACL names the
 * creating process's user, LocalSystem and the Administrators group, each
 * with full access, and nobody else. It is built once per library init
 * from the process token (not from the thread's, which may impersonate
 * someone else for a while).
 */
#include "iocp_backend.h"

#include "../../common/error.h"
#include "../../common/log.h"

#include <string.h>

static SECURITY_DESCRIPTOR descriptor;
static SECURITY_ATTRIBUTES attributes;
/* One block (the process heap's, not the library's allocator: it lives as
 * long as the library is initialised) holding the DACL and the SIDs. */
static void *block;

/* The token's user SID, copied into buf (at most len bytes). */
static bool process_user_sid(void *buf, DWORD len)
{
    HANDLE token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        return false;
    }
    DWORD need = 0;
    GetTokenInformation(token, TokenUser, NULL, 0, &need);
    bool ok = false;
    TOKEN_USER *user = need ? HeapAlloc(GetProcessHeap(), 0, need) : NULL;
    if (user && GetTokenInformation(token, TokenUser, user, need, &need)) {
        ok = CopySid(len, buf, user->User.Sid) != 0;
    }
    if (user) {
        HeapFree(GetProcessHeap(), 0, user);
    }
    CloseHandle(token);
    return ok;
}

int rs__iocp_security_init(void)
{
    /* Three SIDs of at most SECURITY_MAX_SID_SIZE bytes, then the ACL. */
    enum { SIDS = 3 };
    size_t acl_len = sizeof(ACL) + SIDS * (sizeof(ACCESS_ALLOWED_ACE) + SECURITY_MAX_SID_SIZE);
    block = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, SIDS * SECURITY_MAX_SID_SIZE + acl_len);
    if (!block) {
        return rs__raise(RS_ERROR_OUT_OF_MEMORY);
    }
    unsigned char *sid[SIDS];
    for (int i = 0; i < SIDS; i++) {
        sid[i] = (unsigned char *)block + (size_t)i * SECURITY_MAX_SID_SIZE;
    }
    PACL acl = (PACL)(void *)((unsigned char *)block + SIDS * SECURITY_MAX_SID_SIZE);
    DWORD len = SECURITY_MAX_SID_SIZE;
    bool ok = process_user_sid(sid[0], SECURITY_MAX_SID_SIZE) &&
              CreateWellKnownSid(WinLocalSystemSid, NULL, sid[1], &len);
    len = SECURITY_MAX_SID_SIZE;
    ok = ok && CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, sid[2], &len) &&
         InitializeAcl(acl, (DWORD)acl_len, ACL_REVISION);
    for (int i = 0; ok && i < SIDS; i++) {
        ok = AddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, sid[i]) != 0;
    }
    ok = ok && InitializeSecurityDescriptor(&descriptor, SECURITY_DESCRIPTOR_REVISION) &&
         SetSecurityDescriptorDacl(&descriptor, TRUE, acl, FALSE);
    if (!ok) {
        RS__LOG(RS_LOG_ERROR, "building the named pipes' security descriptor failed: %lu",
                (unsigned long)GetLastError());
        rs__iocp_security_clean_up();
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    attributes.nLength = sizeof attributes;
    attributes.lpSecurityDescriptor = &descriptor;
    attributes.bInheritHandle = FALSE;
    return 0;
}

void rs__iocp_security_clean_up(void)
{
    if (block) {
        HeapFree(GetProcessHeap(), 0, block);
        block = NULL;
    }
    memset(&descriptor, 0, sizeof descriptor);
    memset(&attributes, 0, sizeof attributes);
}

SECURITY_ATTRIBUTES *rs__iocp_pipe_security(void)
{
    return &attributes;
}
