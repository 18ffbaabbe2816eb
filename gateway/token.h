/*
 * token.h — `portcullis token`: mints a signed JWT (development and tests).
 */
#ifndef PC_TOKEN_H
#define PC_TOKEN_H

/* argv[0] is "token". Returns the exit status (0, 1 failure, 2 usage). */
int pc_token_main(int argc, char **argv);

#endif
