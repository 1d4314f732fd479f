/* placeholder: replaced by the audit page script */
