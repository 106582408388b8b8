/* Settings tables of the subcommands: long options, --help lines, names. */
#include "common/compat.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"

void cli_settings_longopts(const struct cli_setting *s, size_t n, struct option *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i].name = s[i].name;
		out[i].has_arg = s[i].has_arg ? required_argument : no_argument;
		out[i].flag = NULL;
		out[i].val = s[i].id;
	}
	memset(&out[n], 0, sizeof(*out));
}

void cli_settings_help(FILE *f, const struct cli_setting *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char left[64];
		xsnprintf(left, sizeof(left), "--%s%s%s", s[i].name, s[i].arg ? " " : "",
			  s[i].arg ? s[i].arg : "");
		fprintf(f, "  %-32s %s\n", left, s[i].help);
	}
}

const char *cli_setting_name(const struct cli_setting *s, size_t n, int id)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].id == id)
			return s[i].name;
	return "?";
}
