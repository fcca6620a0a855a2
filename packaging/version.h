#ifndef HOST_DEVICE_VERSION_H
#define HOST_DEVICE_VERSION_H
/* When CNI_COMMAND is VERSION and the answer is certain (packaging/version.c): print it and
 * return the exit status. Otherwise -1, with stdin as it was: the plugin answers. */
int answer_version(void);
#endif
