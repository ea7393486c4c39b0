/* The steering object (build/l3x.bpf.o), embedded so that the library
 * never has to find it on disk. Read by lib/steer.c. */
	.section .rodata.l3x_bpf_obj, "a"
	.balign 8
	.globl l3x_bpf_obj_start
	.hidden l3x_bpf_obj_start
l3x_bpf_obj_start:
	.incbin L3X_BPF_OBJ_PATH
	.globl l3x_bpf_obj_end
	.hidden l3x_bpf_obj_end
l3x_bpf_obj_end:
	.section .note.GNU-stack, "", @progbits
