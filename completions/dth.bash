# bash completion for dth(1)                               -*- shell-script -*-
#
# Subcommands are listed here; the options of each are read from its own
# --help (so they cannot drift from the binary); remote names, task names
# and REMOTE:BUCKET/KEY paths come from `dth __complete`, which reads the
# config (--config FILE on the line, else the usual places) and the manifest
# (--state DIR), lists a bucket with one request and caches the answer for
# 60 s. Errors are never shown. Works with or without bash-completion's
# helpers (_get_comp_words_by_ref); keys holding white space are not quoted.

_dth_commands="sync manifest mount image agent task config version"
_dth_manifest_commands="tasks ls stat stats diff verify export merge images"
_dth_image_commands="inspect tags repos sync"
_dth_task_commands="list show create update start stop run retry delete history failures objects images webhook notify-secret"

# The words of the line up to the cursor, with REMOTE:PATH kept as one word
# (readline splits at ':'): sets words, cword, cur, prev.
_dth_words()
{
	if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
		_get_comp_words_by_ref -n : cur prev words cword
		return
	fi
	if [[ -n ${COMP_LINE-} ]]; then
		local line=${COMP_LINE:0:${COMP_POINT:-${#COMP_LINE}}}
		read -r -a words <<<"$line"
		[[ $line == *[[:space:]] ]] && words+=("")
		((${#words[@]})) || words=("")
	else
		words=("${COMP_WORDS[@]}")
	fi
	cword=$((${#words[@]} - 1))
	[[ -z ${COMP_LINE-} ]] && cword=$COMP_CWORD
	cur=${words[cword]}
	prev=${words[cword - 1]-}
}

# Fill COMPREPLY with the lines of a command's output; drop what readline
# keeps before a ':' of cur; no space after a candidate ending in '/' or ':'.
_dth_reply()
{
	local c
	mapfile -t COMPREPLY < <("$@" 2>/dev/null)
	for c in "${COMPREPLY[@]}"; do
		if [[ $c == */ || $c == *: ]]; then
			compopt -o nospace 2>/dev/null
			break
		fi
	done
	if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
		local strip=${cur%"${cur##*:}"} i
		for i in "${!COMPREPLY[@]}"; do
			COMPREPLY[i]=${COMPREPLY[i]#"$strip"}
		done
	fi
}

# Options of a subcommand: every --name its --help mentions.
_dth_options()
{
	"$@" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# Whether option $1 takes an argument, as the help of "${@:2}" writes it
# ("--name ARG" with ARG in capitals).
_dth_takes_arg()
{
	local opt=$1
	shift
	"$@" --help 2>/dev/null | grep -qE -- "(^|[[ ])${opt} [A-Z]"
}

# Registry and ECR remotes starting with $cur, each with its ':' (dth, cur
# and ctx are _dth's).
_dth_registries()
{
	{
		"$dth" __complete remotes "$cur" --type registry "${ctx[@]}"
		"$dth" __complete remotes "$cur" --type ecr "${ctx[@]}"
	} | sed 's/$/:/'
}

_dth()
{
	local cur prev words cword
	_dth_words
	COMPREPLY=()
	local dth=${words[0]} i w
	local -a ctx=() pos=()
	local cmd="" sub="" skip=0
	# --config/--state given on the line, the subcommand, its positionals
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if ((skip)); then
			skip=0
			continue
		fi
		case $w in
		--config | --state)
			ctx+=("$w" "${words[i + 1]-}")
			skip=1
			continue
			;;
		--config=* | --state=*)
			ctx+=("${w%%=*}" "${w#*=}")
			continue
			;;
		--log-level | -o | --option | --task | --remote | --agent | --token-file | --ca-file | \
			--limit | --status | --concurrency | --images | --images-file | --tags | --platform | \
			--listen | --workers | --stop-timeout | --tls-cert | --tls-key | --from)
			skip=1
			continue
			;;
		-*) continue ;;
		esac
		if [[ -z $cmd ]]; then
			cmd=$w
		elif [[ -z $sub && $cmd == @(manifest|image|task|config) ]]; then
			sub=$w
		else
			pos+=("$w")
		fi
	done
	local -a help=("$dth")
	[[ -n $cmd ]] && help+=("$cmd")
	[[ $cmd == config ]] && help+=(check)
	[[ $cmd == image && -n $sub ]] && help+=("$sub")

	# the argument of an option
	case $prev in
	--config | --token-file | --ca-file | --images-file | --pid-file | --stats-file | \
		--log-file | --tls-cert | --tls-key | --from)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		compopt -o filenames 2>/dev/null
		return
		;;
	--state)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		compopt -o filenames 2>/dev/null
		return
		;;
	--task)
		_dth_reply "$dth" __complete tasks "$cur" "${ctx[@]}"
		return
		;;
	--remote)
		_dth_reply "$dth" __complete remotes "$cur" "${ctx[@]}"
		return
		;;
	--status)
		mapfile -t COMPREPLY < <(compgen -W "pending copying done failed skipped deleted" -- "$cur")
		return
		;;
	--sse)
		mapfile -t COMPREPLY < <(compgen -W "AES256 aws:kms" -- "$cur")
		return
		;;
	--log-level)
		mapfile -t COMPREPLY < <(compgen -W "error warn info debug" -- "$cur")
		return
		;;
	--*)
		# another option taking an argument: nothing to offer
		_dth_takes_arg "$prev" "${help[@]}" && return
		;;
	esac

	if [[ $cur == -* ]]; then
		if [[ -z $cmd ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--log-level --verbose --help --version" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$(_dth_options "${help[@]}")" -- "$cur")
		fi
		return
	fi
	if [[ -z $cmd ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$_dth_commands" -- "$cur")
		return
	fi
	local subs=""
	case $cmd in
	manifest) subs=$_dth_manifest_commands ;;
	image) subs=$_dth_image_commands ;;
	task) subs=$_dth_task_commands ;;
	config) subs=check ;;
	esac
	if [[ -n $subs && -z $sub ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
		return
	fi
	local n=${#pos[@]}
	case $cmd in
	sync | mount)
		if [[ $cur == [/.~]* || ($cmd == mount && $n -ge 1) ]]; then
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
			compopt -o filenames 2>/dev/null
		elif ((n < 2)); then
			_dth_reply "$dth" __complete path "$cur" "${ctx[@]}"
		fi
		;;
	manifest)
		[[ $sub != tasks ]] && ((n == 0)) && _dth_reply "$dth" __complete tasks "$cur" "${ctx[@]}"
		;;
	task)
		[[ $sub != @(list|create) ]] && ((n == 0)) &&
			_dth_reply "$dth" __complete tasks "$cur" "${ctx[@]}"
		;;
	image)
		[[ $cur != *:* ]] && _dth_reply _dth_registries
		;;
	esac
}
complete -F _dth dth
