# shellcheck shell=bash
# One description of a guest machine, and what is made from it: the QEMU
# command line (direct runs, recovery guests) and the libvirt domain XML.
# The layout (where the NV-DIMMs sit, maxmem, slots) is computed here once.
#
# A machine is the associative array M plus the list M_DIMMS:
#   M[cpus] M[cpu] M[mem] (e.g. 1G)        vCPUs, CPU model, RAM
#   M[kernel] M[initrd] M[cmdline]        what boots
#   M[persistence]                         nvdimm-persistence= (or empty)
#   M[console] M[tap] M[files]             the serial ports' files ("" = none);
#   M[console_stdio]=1                     the console on this terminal instead
#   M[ctl]                                 a recovery guest's control channel:
#                                          PREFIX.in/.out FIFOs on its second
#                                          port, M[tap] on its third
#   M[plugin] M[plugin_log]                -plugin argument (or empty)
#   M[rr]                                  -icount argument (or empty)
#   M[pmem_kind] M[pmem_base]              nvdimm (default), virtio-pmem or cxl:
#                                          what the first NV-DIMM is, and its address
#   M[cxl_lsa]                             cxl: the label storage area's file
#   M_DIMMS=("PATH:MIB" ...)               NV-DIMMs, the first one watched

# Where QEMU (pc machine) puts the first NV-DIMM for RAM_MIB of RAM: RAM
# below 4 GiB up to 3.5 GiB (3 GiB when more, gigabyte-aligned), the rest
# above 4 GiB; device memory starts at the next GiB after that. The guest's
# /proc/iomem is checked against this after the run.
pmem_base_for() { # RAM_MIB
	local above=0
	[ "$1" -lt 3584 ] || above=$(($1 - 3072))
	printf '0x%x' $(((4096 + (above + 1023) / 1024 * 1024) * 1024 * 1024))
}

# MAXMEM (MiB) and SLOTS of the memory hotplug area for RAM_MIB of RAM and
# NV-DIMMs of DIMM_MIB each in it.
hotplug_layout() { # RAM_MIB [DIMM_MIB...]
	local ram=$1 d dimm_mib=0
	shift
	for d in "$@"; do dimm_mib=$((dimm_mib + d)); done
	MAXMEM=$((ram + dimm_mib + 1024))
	SLOTS=$#
	[ "$SLOTS" -ge 2 ] || SLOTS=2
}

# Where the CXL fixed memory window (and so a cxl kind's region) starts, on
# q35 with RAM_MIB of RAM and the hotplug area hotplug_layout gives for the
# NV-DIMMs in it: after that area (it starts at the GiB after the RAM above
# 4 GiB; q35 keeps at most 2.75 GiB below, or 2 when there is more) and
# 1 MiB of host bridge registers, at 256 MiB alignment (QEMU's
# pc_get_cxl_range_start).
cxl_base_for() { # RAM_MIB [DIMM_MIB...]
	local below=2816 above=0 start
	[ "$1" -lt 2816 ] || below=2048
	[ "$1" -le "$below" ] || above=$(($1 - below))
	hotplug_layout "$@"
	start=$((4096 + (above + 1023) / 1024 * 1024 + MAXMEM - $1 + SLOTS * 1024 + 1))
	printf '0x%x' $(((start + 255) / 256 * 256 * 1024 * 1024))
}

# MAXMEM (MiB) and SLOTS of the memory hotplug area for the machine M
# (a cxl kind's first NV-DIMM is not in it: it sits behind the CXL window).
machine_layout() {
	local i sizes=()
	for i in "${!M_DIMMS[@]}"; do
		[ "$i" != 0 ] || [ "${M[pmem_kind]:-nvdimm}" != cxl ] || continue
		sizes+=("${M_DIMMS[$i]##*:}")
	done
	hotplug_layout "$(to_mib "${M[mem]}")" ${sizes[@]+"${sizes[@]}"}
}

# QEMU_ARGV: the machine as a qemu-system-x86_64 command line.
machine_qemu_argv() {
	local i d machine=pc,nvdimm=on
	machine_layout
	# CXL needs q35 (pxb-cxl refuses a conventional PCI bus)
	[ "${M[pmem_kind]:-nvdimm}" != cxl ] || machine=q35,cxl=on,nvdimm=on
	[ -z "${M[persistence]:-}" ] || machine="$machine,nvdimm-persistence=${M[persistence]}"
	QEMU_ARGV=(qemu-system-x86_64 -accel tcg -cpu "${M[cpu]}" -smp "${M[cpus]}"
		-kernel "${M[kernel]}" -initrd "${M[initrd]}" -append "${M[cmdline]}"
		-display none -monitor none -no-reboot -machine "$machine"
		-m "${M[mem]},slots=$SLOTS,maxmem=${MAXMEM}M")
	[ -z "${M[rr]:-}" ] || QEMU_ARGV+=(-icount "${M[rr]}")
	for i in "${!M_DIMMS[@]}"; do
		d=${M_DIMMS[$i]}
		# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
		QEMU_ARGV+=(-object "memory-backend-file,id=mem$i,share=on,mem-path=${d%:*},size=${d##*:}M")
		if [ "$i" = 0 ] && [ "${M[pmem_kind]:-nvdimm}" = virtio-pmem ]; then
			# pinned where an NV-DIMM would be: the plugin and the guest look there
			QEMU_ARGV+=(-device "virtio-pmem-pci,id=vpm0,memdev=mem0,memaddr=${M[pmem_base]}")
		elif [ "$i" = 0 ] && [ "${M[pmem_kind]:-nvdimm}" = cxl ]; then
			# a type-3 device with a persistent partition (and its label
			# area), behind a CXL host bridge and root port, in a 4 GiB window
			# shellcheck disable=SC2054
			QEMU_ARGV+=(-object "memory-backend-file,id=lsa0,share=on,mem-path=${M[cxl_lsa]},size=256K"
				-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1
				-device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2
				-device cxl-type3,bus=rp0,persistent-memdev=mem0,lsa=lsa0,id=cxl-pmem0
				-M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G)
		else
			QEMU_ARGV+=(-device "nvdimm,id=nv$i,memdev=mem$i")
		fi
	done
	# shellcheck disable=SC2054
	if [ "${M[console_stdio]:-0}" = 1 ]; then
		QEMU_ARGV+=(-chardev "stdio,id=con,signal=off,logfile=${M[console]}" -serial chardev:con)
	else
		QEMU_ARGV+=(-chardev "file,id=con,path=${M[console]}" -serial chardev:con)
	fi
	# shellcheck disable=SC2054
	if [ -n "${M[ctl]:-}" ]; then
		QEMU_ARGV+=(-chardev "pipe,id=ctl,path=${M[ctl]}" -serial chardev:ctl
			-chardev "file,id=tap,path=${M[tap]}" -serial chardev:tap)
	elif [ -n "${M[files]:-}" ]; then
		QEMU_ARGV+=(-chardev "file,id=tap,path=${M[tap]}" -serial chardev:tap
			-chardev "file,id=files,path=${M[files]}" -serial chardev:files)
	else
		QEMU_ARGV+=(-chardev "file,id=tap,path=${M[tap]}" -serial chardev:tap -serial null)
	fi
	[ -z "${M[plugin]:-}" ] || QEMU_ARGV+=(-plugin "${M[plugin]}" -d plugin -D "${M[plugin_log]}")
	return 0
}

# Text for an XML attribute or element, escaped.
xml_esc() {
	local s=$1
	s=${s//&/&amp;}
	s=${s//</&lt;}
	s=${s//>/&gt;}
	s=${s//\'/&apos;}
	s=${s//\"/&quot;}
	printf '%s' "$s"
}

# The machine as a libvirt domain NAME (type qemu: TCG), on stdout.
machine_domain_xml() {
	local name=$1 mem_mib d a qargs=() dimms=0 port=0 f last_cpu
	machine_layout
	last_cpu=$((${M[cpus]} - 1))
	mem_mib=$(to_mib "${M[mem]}")
	for d in "${M_DIMMS[@]}"; do dimms=$((dimms + ${d##*:})); done
	[ -z "${M[persistence]:-}" ] || qargs+=(-machine "nvdimm-persistence=${M[persistence]}")
	[ -z "${M[plugin]:-}" ] || qargs+=(-plugin "${M[plugin]}" -d plugin -D "${M[plugin_log]}")
	cat <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$(xml_esc "$name")</name>
  <description>daxlab run (run.sh --libvirt): TCG, the daxlab-pmem plugin on the NV-DIMM</description>
  <maxMemory slots='$SLOTS' unit='MiB'>$MAXMEM</maxMemory>
  <memory unit='MiB'>$((mem_mib + dimms))</memory>
  <vcpu>${M[cpus]}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$(xml_esc "${M[kernel]}")</kernel>
    <initrd>$(xml_esc "${M[initrd]}")</initrd>
    <cmdline>$(xml_esc "${M[cmdline]}")</cmdline>
  </os>
  <features><acpi/></features>
XML
	if [ "${M[cpu]}" = max ]; then
		echo "  <cpu mode='maximum' check='none'>"
	else
		echo "  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>$(xml_esc "${M[cpu]}")</model>"
	fi
	cat <<XML
    <numa><cell id='0' cpus='0-$last_cpu' memory='$mem_mib' unit='MiB'/></numa>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(xml_esc "$(command -v qemu-system-x86_64)")</emulator>
XML
	for f in "${M[console]}" "${M[tap]}" "${M[files]}"; do
		echo "    <serial type='file'><source path='$(xml_esc "$f")'/><target port='$port'/></serial>"
		port=$((port + 1))
	done
	for d in "${M_DIMMS[@]}"; do
		cat <<XML
    <memory model='nvdimm' access='shared'>
      <source><path>$(xml_esc "${d%:*}")</path></source>
      <target><size unit='MiB'>${d##*:}</size><node>0</node></target>
    </memory>
XML
	done
	echo "    <memballoon model='none'/>"
	echo "  </devices>"
	echo "  <qemu:commandline>"
	for a in ${qargs[@]+"${qargs[@]}"}; do echo "    <qemu:arg value='$(xml_esc "$a")'/>"; done
	echo "  </qemu:commandline>"
	echo "</domain>"
}
