#ifndef ORCH_CPROCESS_H
#define ORCH_CPROCESS_H

#include <spawn.h>

/// pipe2(fds, O_CLOEXEC): both ends close on exec, so no other child inherits them.
int orch_pipe_cloexec(int fds[2]);

/// posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor >= from.
int orch_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// posix_spawn_file_actions_addchdir_np: the child starts in directory.
int orch_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *directory);

#endif
