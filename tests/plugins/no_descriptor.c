/*
 * no_descriptor.c — a shared object that is not a Portcullis plugin: it
 * does not export `portcullis_plugin` (tests: the gateway must say so).
 */
int portcullis_not_a_plugin(void);

int portcullis_not_a_plugin(void)
{
    return 0;
}
