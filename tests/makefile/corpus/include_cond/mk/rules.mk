included.txt: config.mk
	echo "rule from an included file" > $@
