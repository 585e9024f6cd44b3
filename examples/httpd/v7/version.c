/* The version this source tree builds: reported in the ready line and the
 * Server header. */
const char httpd_version[] = "v7";
